"""The sharding of per-sample work, written once (parallel.plan_shards, map_samples, cat), without Ray.

An in-process executor with a checkpoint shards exactly as Ray workers would (the same ranges,
payloads, keys and joins), so every algorithm that shards is checked here against its
one-piece run; tests/test_parallel.py does the same on two Ray workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import dlaudit
from dlaudit import parallel

CALLS: list[tuple[int, int]] = []


def _double_shard(_: object, p: dict[str, Any]) -> dict[str, Any]:
    CALLS.append((p["start"], len(p["x"])))
    return {"y": p["x"] * 2, "n": len(p["x"])}


def _checkpointed(folder: Path, workers: int = 2) -> parallel.InProcess:
    return parallel.InProcess(workers=workers, checkpoint=parallel.Checkpoint(folder, {"run": "test"}))


def test_plan_shards_only_when_sharding_pays(tmp_path: Path) -> None:
    assert parallel.plan_shards(100, align=8, executor=parallel.InProcess()) == []  # in-process: one piece
    ex = _checkpointed(tmp_path / "ck")
    assert parallel.plan_shards(100, align=8, executor=ex) == parallel.shard_ranges(100, 2, align=8)
    assert parallel.plan_shards(0, executor=ex) == []
    one = _checkpointed(tmp_path / "ck1", workers=1)
    assert parallel.plan_shards(3, align=4, executor=one) == [(0, 3)]  # one shard, still worth resuming
    assert parallel.plan_shards(3, align=4, resumable=False, executor=one) == []
    with parallel.active(ex):
        assert parallel.plan_shards(16) == parallel.shard_ranges(16, 2)  # the current executor by default


def test_map_samples_keeps_order_and_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    x = torch.arange(20.0).reshape(10, 2)
    ranges = [(0, 4), (4, 8), (8, 10)]

    def run(ex: parallel.Executor) -> list[Any]:
        return parallel.map_samples(
            _double_shard,
            None,
            ranges,
            lambda a, b: {"x": x[a:b], "start": a},
            key=lambda p: ("double", p["x"]),
            rows=("y",),
            row_shapes={"y": (2,)},
            kinds={"n": int},
            stage="double",
            executor=ex,
        )

    CALLS.clear()
    parts = run(_checkpointed(tmp_path / "ck"))
    assert CALLS == [(0, 4), (4, 4), (8, 2)]
    torch.testing.assert_close(parallel.cat(parts, "y"), x * 2)
    again = _checkpointed(tmp_path / "ck")
    CALLS.clear()
    torch.testing.assert_close(parallel.cat(run(again), "y"), x * 2)
    assert CALLS == [] and again.stats["reused"] == 3
    key = parallel.stable_key("double", x[4:8])
    again.checkpoint.put(key, {"y": torch.zeros(3, 2), "n": 3})  # a stored shard of the wrong length
    third = _checkpointed(tmp_path / "ck")
    torch.testing.assert_close(parallel.cat(run(third), "y"), x * 2)
    assert CALLS == [(4, 4)] and third.stats["reused"] == 2 and len(third.checkpoint.recomputed) == 1


def test_cat_joins_tensors_and_arrays_in_shard_order() -> None:
    parts = [{"t": torch.tensor([1, 2]), "a": np.array([[1], [2]])}, {"t": torch.tensor([3]), "a": np.array([[3]])}]
    assert torch.equal(parallel.cat(parts, "t"), torch.tensor([1, 2, 3]))
    assert np.array_equal(parallel.cat(parts, "a"), np.array([[1], [2], [3]]))
    assert np.array_equal(parallel.cat([[np.ones(2)], [np.zeros(1)]], 0), np.array([1.0, 1.0, 0.0]))


@pytest.fixture(scope="module")
def data(digits_cnn: dlaudit.ModelBundle) -> dlaudit.AuditData:
    return dlaudit.load_data(bundle=digits_cnn, limit=48)


def test_every_sharded_algorithm_gives_the_numbers_of_one_piece(tmp_path: Path, digits_cnn, data) -> None:
    from dlaudit.explain.explanation import explain
    from dlaudit.fairness.metrics import _bootstrap_confusions
    from dlaudit.robust.attacks import autoattack, make_attack, run_attack
    from dlaudit.robust.smoothing import certify

    x, y = data.x, data.y

    def everything() -> dict[str, Any]:
        pgd = run_attack(digits_cnn, x, y, make_attack("pgd", 0.1, steps=3), seed=3, batch_size=8, keep_adv=True)
        aa = autoattack(digits_cnn, x[:16], y[:16], eps=0.1, version="fast", seed=1, batch_size=4, return_adv=True)
        smooth = certify(digits_cnn, x[:6], y[:6], sigma=0.25, n0=10, n=50, seed=4)
        lime = explain(digits_cnn, data, methods="lime", n=3, quality=False, fast=True, seed=2)
        keys = [np.random.default_rng(0).integers(0, 8, 300)]
        boot = _bootstrap_confusions(keys, [8], 230, 7, None)
        return {
            "pgd": (pgd.pred, pgd.success, pgd.x_adv),
            "autoattack": (aa.clean_correct, aa.robust, aa.breaker, aa.x_adv, aa.counts),
            "smoothing": (smooth.prediction, smooth.counts, smooth.radius, smooth.p_lower),  # batch size: per shard
            "lime": (lime.attributions["lime"],),
            "bootstrap": (torch.from_numpy(boot[0]),),
        }

    alone = everything()
    ex = _checkpointed(tmp_path / "ck")
    with parallel.active(ex):
        sharded = everything()
    assert ex.stats["shards"] >= 5 * 2  # every algorithm went over shards
    for name, values in alone.items():
        for a, b in zip(values, sharded[name]):
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b), name
            else:
                assert a == b, name


def test_the_algorithms_shard_only_through_map_samples() -> None:
    """No algorithm module builds payloads, keys or checks itself, or calls an executor's map."""
    import ast

    package = Path(dlaudit.__file__).parent
    glue = {"shard_ranges", "rows_check", "stable_key", "SHARDS_PER_WORKER"}
    found = []
    for folder in ("robust", "explain", "fairness", "text"):
        for path in sorted((package / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in glue:
                    found.append(f"{path.relative_to(package)}:{node.lineno} uses {node.attr}")
                if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("parallel"):
                    found += [f"{path.relative_to(package)}:{node.lineno} imports {a.name}" for a in node.names]
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "map":
                    if node.args and isinstance(node.args[0], ast.Name) and node.args[0].id.endswith("_shard"):
                        found.append(f"{path.relative_to(package)}:{node.lineno} maps shards itself")
    assert found == []
