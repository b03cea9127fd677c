"""A real user's model: torchvision's resnet18 (random weights, 10 classes, 3x32x32) saved as a bare state_dict,
audited through every section with --arch and a card on CIFAR-format files (about 30 s on one thread)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner

from dlaudit.cli import cli
from tests.cifar_files import write_cifar10

pytestmark = pytest.mark.slow

CARD = {
    "input_shape": [3, 32, 32],
    "num_classes": 10,
    "value_range": [0, 1],
    "mean": [0.4914, 0.4822, 0.4465],
    "std": [0.2470, 0.2435, 0.2616],
}


@pytest.fixture(scope="module")
def resnet_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), folder / "model.pt")
    (folder / "card.json").write_text(json.dumps(CARD))
    write_cifar10(folder / "data", per_batch=8, test=40)  # 40 training and 40 held-out images
    return folder


def test_resnet18_state_dict_through_every_section(resnet_files: Path) -> None:
    d = resnet_files
    argv = [
        "report",
        str(d / "model.pt"),
        "--arch",
        "torchvision:resnet18",
        "--num-classes",
        "10",
        "--card",
        str(d / "card.json"),
        "--data",
        "cifar10",
        "--data-dir",
        str(d / "data"),
        "--fast",
        "--quiet",
        "-o",
        str(d / "r.html"),
        "--json",
        str(d / "r.json"),
    ]
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads((d / "r.json").read_text())
    sections = {s["name"]: s for s in report["sections"]}
    assert {n: s["status"] for n, s in sections.items()} == {
        "performance": "ok",
        "explain": "ok",
        "robustness": "ok",
        "fairness": "skipped",
    }
    assert "no sensitive features" in sections["fairness"]["reason"]  # a true reason: CIFAR has none
    assert report["card"]["architecture"] == "torchvision:resnet18"
    assert "applied by dlaudit in front of the loaded model" in report["provenance"]["model"]["normalisation"]
    m = report["metrics"]
    for method in ("saliency", "ig", "gradcam", "shap"):  # the sanity check ran on the randomised copy
        assert m[f"explain.{method}.sanity_rank_corr"] is not None, method
    assert m["robustness.pgd_linf.acc@0.1"] is not None
    explain = sections["explain"]
    skipped = [f["message"] for f in explain["findings"] if f["check"] == "explain-skipped"]
    # torchvision's ResNet reuses its ReLUs: DeepLIFT's true reason for skipping
    assert all("used 2 times" in s for s in skipped), skipped
    assert not [f for f in explain["findings"] if f["check"] == "explain-failed"]


def test_report_with_arch_on_cifar10_files(resnet_files: Path) -> None:
    """The issue's command line: no card, the input shape comes from the data."""
    d = resnet_files
    argv = [
        "report",
        str(d / "model.pt"),
        "--arch",
        "torchvision:resnet18",
        "--num-classes",
        "10",
        "--data",
        "cifar10",
        "--data-dir",
        str(d / "data"),
        "--checks",
        "performance",
        "-o",
        str(d / "p.html"),
        "--json",
        str(d / "p.json"),
    ]
    res = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads((d / "p.json").read_text())
    assert report["card"]["input_shape"] == [3, 32, 32] and report["provenance"]["data"]["n"] == 40
    assert report["provenance"]["model"]["normalisation"].startswith("none")
