"""A corpus of crafted inputs: each gives its exit code and a one-line message, never a traceback,
and destroys nothing the user had.

One table: (case id, builder) where the builder writes whatever files it needs into
a folder and returns the command line; the expected exit code and a fragment of the
message go with it. The command runs in-process (Click's runner), in that folder.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.cli import cli
from tests.hostile.crafted import run_crafted

# -- shared files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small digits MLP checkpoint (trained once for the module)."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=2, seed=0, device="cpu"), path)
    return path


class _Linear64(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _torchscript(folder: Path, card: object | None = None, *, name: str = "ts.pt", text: str | None = None) -> Path:
    path = folder / name
    torch.jit.save(torch.jit.script(_Linear64().eval()), path)
    if card is not None or text is not None:
        path.with_suffix(".card.json").write_text(text if text is not None else json.dumps(card))
    return path


def _npz(folder: Path, name: str = "d.npz", **arrays: np.ndarray) -> Path:
    path = folder / name
    np.savez(path, **arrays)
    return path


def _digits_like(n: int) -> dict[str, np.ndarray]:
    return {"x": np.zeros((n, 8, 8), np.uint8), "y": np.arange(n) % 10}


# -- the builders: folder, model -> argv ---------------------------------------------------------

Builder = Callable[[Path, Path], list[str]]


def card_value_range_one_number(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d, {"input_shape": [1, 8, 8], "value_range": [0]})), "--data", "digits"]


def card_is_a_list(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d, [1, 8, 8])), "--data", "digits"]


def card_postprocess_string(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d, {"input_shape": [1, 8, 8], "postprocess": "x"})), "--data", "digits"]


def card_deep_json(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d, text="[" * 100_000 + "]" * 100_000)), "--data", "digits"]


def card_huge_shape(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d, {"input_shape": [1, 20000, 20000]})), "--data", "digits"]


def checkpoint_with_a_huge_shape(d: Path, m: Path) -> list[str]:
    return ["info", str(m), "--input-shape", "1,1000,1000"]


def card_shape_not_whole(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--input-shape", "1,8.7,8"]


def card_shape_188(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--input-shape", "188", "--data", "digits"]


def value_range_one_number(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--input-shape", "1,8,8", "--value-range", "5"]


def value_range_three_numbers(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--input-shape", "1,8,8", "--value-range", "0,1,2"]


def npz_length_mismatch(d: Path, m: Path) -> list[str]:
    return ["info", str(m), "--data", str(_npz(d, x=np.zeros((100, 8, 8), np.uint8), y=np.arange(50) % 10))]


def npz_one_row(d: Path, m: Path) -> list[str]:
    return ["info", str(m), "--data", str(_npz(d, **_digits_like(1)))]


def npz_huge_labels(d: Path, m: Path) -> list[str]:
    return ["info", str(m), "--data", str(_npz(d, x=np.zeros((20, 8, 8), np.uint8), y=np.full(20, 2**62)))]


def npz_truncated(d: Path, m: Path) -> list[str]:
    path = _npz(d, **_digits_like(40))
    path.write_bytes(path.read_bytes()[:300])
    return ["info", str(m), "--data", str(path)]


def npz_giant_declared_shape(d: Path, m: Path) -> list[str]:
    text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 8, 8), }".ljust(117) + b"\n"
    header = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
    path = d / "giant.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", header + b"\x00" * 64)
        buf = io.BytesIO()
        np.save(buf, np.arange(10))
        zf.writestr("y.npy", buf.getvalue())
    return ["info", str(m), "--data", str(path)]


def csv_one_row(d: Path, m: Path) -> list[str]:
    (d / "t.csv").write_text("a,b,label\n1,2,0\n")
    return ["train", "mlp", "--data", str(d / "t.csv"), "--target", "label", "-o", str(d / "t.pt")]


def adult_not_utf8(d: Path, m: Path) -> list[str]:
    (d / "adult").mkdir()
    (d / "adult" / "adult.data").write_bytes(b"39, State-gov, 77516, Bachelors, 13, \xff\xfe\n" * 10)
    (d / "adult" / "adult.test").write_bytes(b"|1x3 Cross validator\n")
    return ["train", "mlp", "--data", "adult", "--data-dir", str(d / "adult"), "-o", str(d / "a.pt")]


def german_one_row(d: Path, m: Path) -> list[str]:
    (d / "german").mkdir()
    (d / "german" / "german.data").write_text(
        "A11 6 A34 A43 1169 A65 A75 4 A93 A101 4 A121 67 A143 A152 2 A173 1 A192 A201 1\n"
    )
    return ["train", "mlp", "--data", "german", "--data-dir", str(d / "german"), "-o", str(d / "g.pt")]


def baseline_is_a_list(d: Path, m: Path) -> list[str]:
    (d / "old.json").write_text("[1, 2, 3]")
    return ["report", str(m), "--checks", "performance", "--baseline", str(d / "old.json"), "-o", str(d / "r.html")]


def config_not_utf8(d: Path, m: Path) -> list[str]:
    (d / "c.toml").write_bytes(b"[tool.dlaudit]\ngates = ['\xff']\n")
    return ["report", str(m), "--checks", "performance", "--config", str(d / "c.toml"), "-o", str(d / "r.html")]


def seed_negative(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance", "--seed", "-1", "-o", str(d / "r.html")]


def seed_too_large(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance", "--seed", str(2**64), "-o", str(d / "r.html")]


def hidden_not_positive(d: Path, m: Path) -> list[str]:
    return ["train", "mlp", "--hidden", "0,-1", "-o", str(d / "h.pt")]


def eps_empty(d: Path, m: Path) -> list[str]:
    return ["attack", str(m), "--eps", "", "--n", "10"]


def attack_budget_beyond_the_range(d: Path, m: Path) -> list[str]:
    return ["attack", str(m), "--eps", "2", "--n", "10"]


def attack_unknown_norm(d: Path, m: Path) -> list[str]:
    return ["attack", str(m), "--norm", "l1", "--n", "10"]


def attack_zero_steps(d: Path, m: Path) -> list[str]:
    return ["attack", str(m), "--steps", "0", "--n", "10"]


def report_over_the_model(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance", "-o", str(m)]


def json_over_the_model(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance", "-o", str(d / "r.html"), "--json", str(m)]


def markdown_over_the_model_via_symlink(d: Path, m: Path) -> list[str]:
    (d / "link.md").symlink_to(m)
    return ["report", str(m), "--checks", "performance", "-o", str(d / "r.html"), "--markdown", str(d / "link.md")]


def train_json_is_the_model(d: Path, m: Path) -> list[str]:
    return ["train", "mlp", "--epochs", "1", "-o", str(d / "t.pt"), "--json", str(d / "t.pt")]


def two_outputs_one_file(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance", "-o", str(d / "same.html"), "--json", str(d / "same.html")]


def output_in_sys(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance", "-o", "/sys/r.html"]


def output_parent_is_a_file(d: Path, m: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["report", str(m), "--checks", "performance", "-o", str(d / "afile" / "r.html")]


def output_is_a_directory(d: Path, m: Path) -> list[str]:
    (d / "adir").mkdir()
    return ["report", str(m), "--checks", "performance", "--json", str(d / "adir")]


def explain_npz_over_the_data(d: Path, m: Path) -> list[str]:
    (d / "out").mkdir()
    data = _npz(d / "out", "attributions.npz", **_digits_like(40))
    return ["explain", str(m), "--data", str(data), "-o", str(d / "out"), "--method", "saliency", "--n", "2"]


def mitigate_output_is_the_model(d: Path, m: Path) -> list[str]:
    return ["mitigate", str(m), "--sensitive", "sex", "--method", "reweigh", "-o", str(m)]


def model_random_bytes(d: Path, m: Path) -> list[str]:
    (d / "noise.pt").write_bytes(np.random.default_rng(0).bytes(10_000))
    return ["info", str(d / "noise.pt")]


def model_truncated_checkpoint(d: Path, m: Path) -> list[str]:
    (d / "cut.pt").write_bytes(m.read_bytes()[: len(m.read_bytes()) // 2])
    return ["info", str(d / "cut.pt")]


def model_wrong_num_classes(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d, {"input_shape": [1, 8, 8], "num_classes": 7})), "--data", "digits"]


def model_one_row_per_batch(d: Path, m: Path) -> list[str]:
    class OneRow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :10].mean(dim=0, keepdim=True)

    path = d / "onerow.pt"
    torch.jit.save(torch.jit.script(OneRow()), path)
    path.with_suffix(".card.json").write_text(json.dumps({"input_shape": [1, 8, 8], "num_classes": 10}))
    return ["report", str(path), "--data", "digits", "--checks", "performance", "-o", str(d / "r.html")]


def unknown_check(d: Path, m: Path) -> list[str]:
    return ["report", str(m), "--checks", "performance,magic", "-o", str(d / "r.html")]


def _state_dict(d: Path, num_classes: int = 10) -> Path:
    import torchvision

    path = d / "sd.pt"
    torch.save(torchvision.models.squeezenet1_1(num_classes=num_classes).state_dict(), path)
    return path


def arch_unknown(d: Path, m: Path) -> list[str]:
    torch.save({"w": torch.zeros(2)}, d / "w.pt")
    return ["info", str(d / "w.pt"), "--arch", "torchvision:resnet19", "--input-shape", "3,32,32"]


def arch_not_a_source(d: Path, m: Path) -> list[str]:
    return ["info", str(_state_dict(d)), "--arch", "resnet18", "--input-shape", "3,32,32"]


def arch_state_dict_does_not_fit(d: Path, m: Path) -> list[str]:
    return [
        "info",
        str(_state_dict(d)),
        "--arch",
        "torchvision:squeezenet1_1",
        "--num-classes",
        "7",
        "--input-shape",
        "3,32,32",
    ]


def arch_timm_without_timm(d: Path, m: Path) -> list[str]:
    return ["info", str(_state_dict(d)), "--arch", "timm:resnet18", "--input-shape", "3,32,32"]


def bare_state_dict_without_arch(d: Path, m: Path) -> list[str]:
    return ["info", str(_state_dict(d)), "--input-shape", "3,32,32"]


def arch_kwargs_not_pairs(d: Path, m: Path) -> list[str]:
    return ["info", str(_state_dict(d)), "--arch", "torchvision:squeezenet1_1", "--arch-kwargs", "dropout"]


def mean_wrong_length(d: Path, m: Path) -> list[str]:
    return [
        "info",
        str(_torchscript(d)),
        "--input-shape",
        "1,8,8",
        "--mean",
        "0.5,0.5",
        "--std",
        "1,1",
        "--data",
        "digits",
    ]


def mean_without_std(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--input-shape", "1,8,8", "--mean", "0.5", "--data", "digits"]


def folder_without_images(d: Path, m: Path) -> list[str]:
    (d / "imgs" / "cat").mkdir(parents=True)
    (d / "imgs" / "cat" / "readme.txt").write_text("no pictures")
    return ["info", str(m), "--data", f"folder:{d / 'imgs'}"]


def folder_unreadable_image(d: Path, m: Path) -> list[str]:
    from PIL import Image

    for cls in ("cat", "dog"):
        (d / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=40 * i).save(d / "imgs" / cls / f"{i}.png")
    (d / "imgs" / "dog" / "9.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return ["info", str(m), "--data", f"folder:{d / 'imgs'}"]


def cifar_batch_with_a_payload(d: Path, m: Path) -> list[str]:
    from tests.cifar_files import plant_payload, write_cifar10

    write_cifar10(d / "c")
    plant_payload(d / "c" / "cifar-10-batches-py" / "test_batch", d / "pwned")
    return ["info", str(m), "--data", "cifar10", "--data-dir", str(d / "c")]


CASES: dict[str, tuple[Builder, int, str]] = {
    "card value_range [0]": (card_value_range_one_number, 2, "value_range must be two numbers"),
    "card is a JSON list": (card_is_a_list, 2, "must be a JSON object"),
    'card postprocess "x"': (card_postprocess_string, 2, "postprocess must be an object"),
    "card 100k-deep JSON": (card_deep_json, 2, "nested too deeply"),
    "card input_shape 1x20000x20000": (card_huge_shape, 2, "values per sample"),
    "checkpoint with --input-shape 1,1000,1000": (checkpoint_with_a_huge_shape, 2, "do not fit"),
    "--input-shape 1,8.7,8": (card_shape_not_whole, 2, "whole numbers"),
    "--input-shape 188 is one dimension": (card_shape_188, 2, "(188,)"),
    "--value-range 5": (value_range_one_number, 2, "takes 2 numbers"),
    "--value-range 0,1,2": (value_range_three_numbers, 2, "takes 2 numbers"),
    "npz 100 x, 50 y": (npz_length_mismatch, 2, "100 inputs but 50 labels"),
    "npz one row": (npz_one_row, 2, "at least 4 are needed"),
    "npz labels 2^62": (npz_huge_labels, 2, "is not a class index"),
    "npz truncated": (npz_truncated, 2, "not a readable .npz"),
    "npz giant declared shape": (npz_giant_declared_shape, 2, "truncated or crafted"),
    "csv one row": (csv_one_row, 2, "at least 4"),
    "adult.data not UTF-8": (adult_not_utf8, 2, "not UTF-8"),
    "german.data one row": (german_one_row, 2, "at least 4"),
    "baseline is a JSON list": (baseline_is_a_list, 2, "baseline"),
    "config not UTF-8": (config_not_utf8, 2, "c.toml"),
    "--seed -1": (seed_negative, 2, "--seed"),
    "--seed 2^64": (seed_too_large, 2, "--seed"),
    "--hidden 0,-1": (hidden_not_positive, 2, "--hidden must be a number >= 1"),
    '--eps ""': (eps_empty, 2, "eps needs at least one number"),
    "attack --eps 2 on [0, 1]": (attack_budget_beyond_the_range, 2, "exceed the value range [0, 1]"),
    "attack --norm l1": (attack_unknown_norm, 2, "unknown norm(s) l1"),
    "attack --steps 0": (attack_zero_steps, 2, "steps must be an integer of at least 1"),
    "report -o MODEL": (report_over_the_model, 2, "would destroy an input"),
    "report --json MODEL": (json_over_the_model, 2, "would destroy an input"),
    "report --markdown symlink-to-MODEL": (markdown_over_the_model_via_symlink, 2, "would destroy an input"),
    "train -o t.pt --json t.pt": (train_json_is_the_model, 2, "are the same file"),
    "-o same.html --json same.html": (two_outputs_one_file, 2, "are the same file"),
    "-o /sys/r.html": (output_in_sys, 2, "cannot be written"),
    "-o below a file": (output_parent_is_a_file, 2, "is a file, not a folder"),
    "--json a directory": (output_is_a_directory, 2, "is a directory"),
    "explain -o over its --data": (explain_npz_over_the_data, 2, "would destroy an input"),
    "mitigate -o MODEL": (mitigate_output_is_the_model, 2, "would destroy an input"),
    "model of random bytes": (model_random_bytes, 2, "not a model file"),
    "model truncated": (model_truncated_checkpoint, 2, "truncated"),
    "card num_classes 7 for 10 logits": (model_wrong_num_classes, 2, "num_classes=7"),
    "model returns one row per batch": (model_one_row_per_batch, 2, "one row of class scores per input"),
    "unknown check": (unknown_check, 2, "unknown check(s) magic"),
    "--arch torchvision:resnet19": (arch_unknown, 2, "close matches: torchvision:resnet18"),
    "--arch resnet18 (no source)": (arch_not_a_source, 2, "--arch must be SOURCE:NAME"),
    "state_dict of 10 classes, --num-classes 7": (
        arch_state_dict_does_not_fit,
        2,
        "classifier.1.weight is (10, 512, 1, 1) in the file but (7, 512, 1, 1) in the architecture",
    ),
    "bare state_dict without --arch": (bare_state_dict_without_arch, 2, "pass --arch torchvision:NAME"),
    "--arch-kwargs dropout": (arch_kwargs_not_pairs, 2, "NAME=VALUE pairs"),
    "--mean of 2 values for 1 channel": (mean_wrong_length, 2, "mean has 2 value(s) but the input has 1 channel(s)"),
    "--mean without --std": (mean_without_std, 2, "give both mean and std"),
    "folder: without images": (folder_without_images, 2, "holds no images"),
    "folder: with an unreadable image": (folder_unreadable_image, 2, "9.jpg could not be read as an image"),
    "cifar10 batch with a __reduce__ payload": (
        cifar_batch_with_a_payload,
        2,
        "dlaudit does not run code from data files",
    ),
    **(
        {"--arch timm:resnet18 without timm": (arch_timm_without_timm, 2, "pip install timm")}
        if importlib.util.find_spec("timm") is None
        else {}
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_input(case: str, tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build, code, fragment = CASES[case]
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    model = work / "m.pt"
    model.write_bytes(model_file.read_bytes())
    out = run_crafted(build(work, model), work, code, fragment)
    if code == 2 and out.startswith("dlaudit: error:"):
        assert len(out.splitlines()) == 1, out


def test_symlinked_output_stays_a_link_to_the_new_report(tmp_path: Path, model_file: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("{}")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    res = CliRunner().invoke(
        cli, ["report", str(model_file), "--checks", "performance", "-o", str(tmp_path / "r.html"), "--json", str(link)]
    )
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["schema_version"] == 1


# -- beyond one command line ---------------------------------------------------------------------


def test_info_json_with_a_nan_card_metric_prints_null(tmp_path: Path, model_file: Path) -> None:
    bundle = dlaudit.load_model(model_file, device="cpu")
    bundle.card.metrics["test_accuracy"] = float("nan")
    path = tmp_path / "nan.pt"
    dlaudit.save_model(bundle, path)
    res = CliRunner().invoke(cli, ["info", str(path), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["card"]["metrics"]["test_accuracy"] is None


def test_a_failed_section_fails_the_run_with_its_reason(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.report.test_audit_api import Analysis, get_analysis

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the explainer crashed")

    a = get_analysis("explain")
    monkeypatch.setitem(dlaudit.analysis._REGISTRY, "explain", Analysis(a.name, a.title, broken, a.order, a.default))
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(model_file),
            "--checks",
            "performance,explain",
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
            "--junit",
            str(tmp_path / "r.xml"),
        ],
    )
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and "the explainer crashed" in res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False and any(g["source"] == "section" and not g["passed"] for g in data["gates"])
    assert 'failures="1"' in (tmp_path / "r.xml").read_text()


def test_timeout_fails_a_slow_section_and_the_rest_still_run(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from tests.report.test_audit_api import Analysis, get_analysis

    def slow(bundle: object, data: object, *, progress: Callable[..., None], **kwargs: object) -> None:
        for i in range(600):  # reports progress between "batches", as every analysis does
            time.sleep(0.05)
            progress("slow", i, 600)

    a = get_analysis("explain")
    monkeypatch.setitem(dlaudit.analysis._REGISTRY, "explain", Analysis(a.name, a.title, slow, a.order, a.default))
    start = time.perf_counter()
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(model_file),
            "--checks",
            "performance,explain",
            "--timeout",
            "1",
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert time.perf_counter() - start < 20
    assert res.exit_code == 1, res.output
    sections = {s["name"]: s for s in json.loads((tmp_path / "r.json").read_text())["sections"]}
    assert sections["performance"]["status"] == "ok"
    assert sections["explain"]["status"] == "error" and "timed out after 1 s" in sections["explain"]["reason"]


def test_many_and_long_class_names_keep_the_report_small(tmp_path: Path) -> None:
    import time

    k = 10_000
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, k))
    path = tmp_path / "wide.pt"
    torch.jit.save(torch.jit.script(model.eval()), path)
    names = [f"class-{i}" for i in range(k)]
    names[3] = "x" * 5000
    path.with_suffix(".card.json").write_text(
        json.dumps({"input_shape": [1, 8, 8], "num_classes": k, "class_names": names})
    )
    x = np.random.default_rng(0).random((200, 8, 8)).astype(np.float32)
    data = _npz(tmp_path, x=x, y=np.arange(200) % k)
    start = time.perf_counter()
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(path),
            "--data",
            str(data),
            "--checks",
            "performance",
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - start < 30
    assert (tmp_path / "r.html").stat().st_size < 2_000_000
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["card"]["class_names"][3] == "x" * 5000  # the full name stays in the JSON
    tables = {t["title"]: t for t in report["sections"][0]["tables"]}
    assert len(tables["Per-class precision and recall"]["rows"]) <= 50 and "Most frequent confusions" in tables
