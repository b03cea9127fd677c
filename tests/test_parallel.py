"""Sharding over Ray and resuming from a checkpoint: the same numbers as one process, whatever happens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dlaudit
from dlaudit import parallel
from dlaudit.cli import cli
from dlaudit.robust.attacks import autoattack, make_attack, run_attack
from dlaudit.robust.smoothing import certify

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[distributed]')")


@pytest.fixture(scope="module")
def executor():
    ex = parallel.RayExecutor(workers=2, threads=1)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def data(digits_cnn: dlaudit.ModelBundle) -> dlaudit.AuditData:
    return dlaudit.load_data(bundle=digits_cnn, limit=160)


def test_attacks_on_two_workers_give_the_numbers_of_one_process(executor, digits_cnn, data) -> None:
    pgd = make_attack("pgd", 0.1, steps=5)
    alone = run_attack(digits_cnn, data.x, data.y, pgd, seed=3, batch_size=32, keep_adv=False)
    with parallel.active(executor):
        sharded = run_attack(digits_cnn, data.x, data.y, pgd, seed=3, batch_size=32, keep_adv=False)
    assert torch.equal(alone.pred, sharded.pred) and torch.equal(alone.success, sharded.success)
    one = autoattack(digits_cnn, data.x[:64], data.y[:64], eps=0.1, version="fast", seed=1, batch_size=16)
    with parallel.active(executor):
        two = autoattack(digits_cnn, data.x[:64], data.y[:64], eps=0.1, version="fast", seed=1, batch_size=16)
    assert torch.equal(one.robust, two.robust) and torch.equal(one.breaker, two.breaker) and one.counts == two.counts
    assert executor.stats["shards"] > 2


def test_smoothing_and_bootstrap_on_two_workers(executor, digits_cnn, data) -> None:
    one = certify(digits_cnn, data.x[:12], data.y[:12], sigma=0.25, n0=20, n=200, seed=4)
    with parallel.active(executor):
        two = certify(digits_cnn, data.x[:12], data.y[:12], sigma=0.25, n0=20, n=200, seed=4)
    assert torch.equal(one.counts, two.counts) and torch.equal(one.radius, two.radius)
    from dlaudit.fairness.metrics import _bootstrap_confusions

    keys = [np.random.default_rng(0).integers(0, 8, 500)]
    alone = _bootstrap_confusions(keys, [8], 230, 7, None)
    with parallel.active(executor):
        sharded = _bootstrap_confusions(keys, [8], 230, 7, None)
    assert np.array_equal(alone[0], sharded[0])


def test_report_with_two_workers_has_the_same_metrics(tmp_path: Path, digits_cnn) -> None:
    model = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, model)
    args = ["report", str(model), "--fast", "--checks", "performance,robustness", "-o", str(tmp_path / "r.html"), "-q"]
    one = CliRunner().invoke(cli, [*args, "--json", str(tmp_path / "one.json")])
    two = CliRunner().invoke(cli, [*args, "--json", str(tmp_path / "two.json"), "--workers", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, (one.output, two.output)
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert a["metrics"] == b["metrics"]
    assert b["provenance"]["parallel"]["backend"] == "ray" and b["provenance"]["parallel"]["workers"] == 2


def test_a_worker_killed_mid_run_changes_nothing(executor, digits_cnn, data) -> None:
    apgd = make_attack("apgd-ce", 0.05, steps=40)
    alone = run_attack(digits_cnn, data.x, data.y, apgd, seed=2, batch_size=8, keep_adv=False)
    pids = executor.worker_pids(digits_cnn)

    def kill_one() -> None:
        time.sleep(0.5)
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one)
    killer.start()
    with parallel.active(executor):
        sharded = run_attack(digits_cnn, data.x, data.y, apgd, seed=2, batch_size=8, keep_adv=False)
    killer.join()
    assert pids[0] not in executor.worker_pids(digits_cnn)  # that worker really died and was replaced
    assert torch.equal(alone.success, sharded.success) and torch.equal(alone.pred, sharded.pred)


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, digits_cnn) -> None:
    model = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, model)
    ckpt = tmp_path / "ckpt"
    cmd = [
        sys.executable,
        "-m",
        "dlaudit",
        "attack",
        str(model),
        "--attack",
        "pgd",
        "--eps",
        "0.05,0.1",
        "--steps",
        "20",
        "--batch-size",
        "8",
        "-q",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*cmd, "--checkpoint", str(ckpt), "--json", str(tmp_path / "cut.json")], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(ckpt.glob("shard-*.pt"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(ckpt.glob("shard-*.pt")))
    assert done_before >= 3 and not (tmp_path / "cut.json").exists()
    resumed = subprocess.run(
        [*cmd, "--checkpoint", str(ckpt), "--json", str(tmp_path / "resumed.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    whole = subprocess.run(
        [*cmd, "--json", str(tmp_path / "whole.json")], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0 and whole.returncode == 0, resumed.stderr + whole.stderr
    r, w = (json.loads((tmp_path / f).read_text()) for f in ("resumed.json", "whole.json"))
    assert r["metrics"] == w["metrics"]
    assert r["provenance"]["parallel"]["shards_reused"] >= done_before


def test_bad_parallel_options_are_one_line_exit_2(tmp_path: Path, digits_cnn) -> None:
    model = tmp_path / "cnn.pt"
    dlaudit.save_model(digits_cnn, model)
    base = ["attack", str(model), "--attack", "pgd", "--eps", "0.1", "--n", "20"]
    zero = CliRunner().invoke(cli, [*base, "--workers", "0"])
    assert zero.exit_code == 2 and "--workers must be a whole number of at least 1" in zero.output
    start = time.time()
    far = CliRunner().invoke(cli, [*base, "--ray-address", "127.0.0.1:9"])
    assert far.exit_code == 2 and "does not answer" in far.output and time.time() - start < 20
    ckpt = tmp_path / "ck"
    first = CliRunner().invoke(cli, [*base, "--checkpoint", str(ckpt)])
    assert first.exit_code == 0, first.output
    other = CliRunner().invoke(cli, [*base[:-2], "--n", "30", "--checkpoint", str(ckpt)])
    assert other.exit_code == 2 and "holds a different run" in other.output and "data" in other.output


def test_without_ray_workers_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(dlaudit.ConfigError, match=r"pip install -e \".\[distributed\]\""):
        parallel.executor_for(workers=2)


def test_shard_ranges_and_threads() -> None:
    assert parallel.shard_ranges(100, 2, align=8) == [
        (0, 16),
        (16, 32),
        (32, 48),
        (48, 64),
        (64, 80),
        (80, 96),
        (96, 100),
    ]
    assert parallel.threads_per_worker(2, cores=2) == 1 and parallel.threads_per_worker(2, cores=16) == 8


def test_lime_and_kernel_shap_per_row_on_two_workers(executor, digits_cnn, data) -> None:
    from dlaudit.explain.explanation import explain

    one = explain(digits_cnn, data, methods="lime", n=4, quality=False, fast=True, seed=2)
    with parallel.active(executor):
        two = explain(digits_cnn, data, methods="lime", n=4, quality=False, fast=True, seed=2)
    assert torch.equal(one.attributions["lime"], two.attributions["lime"])
    credit = dlaudit.train("mlp", "synthetic-credit", epochs=3, batch_size=256, seed=0, device="cpu")
    rows = dlaudit.load_data(bundle=credit, limit=120)
    a = explain(credit, rows, methods="lime,shap", n=4, quality=False, fast=True, seed=1)
    with parallel.active(executor):
        b = explain(credit, rows, methods="lime,shap", n=4, quality=False, fast=True, seed=1)
    for m in ("lime", "shap"):
        torch.testing.assert_close(a.attributions[m], b.attributions[m], rtol=0, atol=1e-9)
