"""The text fairness section takes its bootstrap resamples by the tabular rule: 1000, 200 with fast, --n-boot over
both its bias AUCs and its group metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.fairness import analysis, text_section
from dlaudit.fairness.text_section import fairness_text
from tests.formats.hf_folders import tiny_bert

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

TEXTS = [
    "a good film by a woman",
    "a bad film by a man",
    "the acting of the women was great",
    "the plot of the men was terrible and slow",
    "i loved every minute of it , she said",
    "i hated the ending , he said",
    "a fine cast and a dull script from the men",
    "the women were great",
]


@pytest.fixture(scope="module")
def folder_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny BERT and a csv of six held-out rows (a split column), with a sensitive column."""
    root = tmp_path_factory.mktemp("nboot")
    folder = tiny_bert(root / "bert")
    csv = root / "reviews.csv"
    labels = ["LABEL_1", "LABEL_0", "LABEL_1", "LABEL_0", "LABEL_0", "LABEL_1", "LABEL_0", "LABEL_1"]
    group = ["f", "m", "f", "m", "f", "m", "m", "f"]
    split = ["test"] * 6 + ["train"] * 2
    pd.DataFrame({"text": TEXTS, "label": labels, "group": group, "split": split}).to_csv(csv, index=False)
    return folder, csv


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The n_boot each bootstrap of the text section is called with (the group metrics', the bias AUCs'); the
    calls go through with at most 5 resamples, to stay quick."""
    seen: dict[str, list[int]] = {"group": [], "bias": []}
    group_results, bias = analysis.group_results, text_section.jigsaw_bias_aucs

    def spy_group(*args: Any, n_boot: int, **kw: Any) -> Any:
        seen["group"].append(n_boot)
        return group_results(*args, n_boot=min(n_boot, 5), **kw)

    def spy_bias(*args: Any, n_boot: int, **kw: Any) -> Any:
        seen["bias"].append(n_boot)
        return bias(*args, n_boot=min(n_boot, 5), **kw)

    monkeypatch.setattr(analysis, "group_results", spy_group)
    monkeypatch.setattr(text_section, "jigsaw_bias_aucs", spy_bias)
    return seen


@pytest.mark.parametrize(("fast", "n_boot", "want"), [(False, None, 1000), (True, None, 200), (True, 7, 7)])
def test_both_bootstraps_follow_the_tabular_rule(
    folder_csv: tuple[Path, Path], spies: dict[str, list[int]], fast: bool, n_boot: int | None, want: int
) -> None:
    folder, csv = folder_csv
    bundle = dlaudit.load_model(folder, device="cpu")
    data = dlaudit.load_data(csv, bundle=bundle, text_column="text", target="label", sensitive="group")
    sec = fairness_text(bundle, data, seed=0, fast=fast, n_boot=n_boot)
    assert analysis.Settings.build(fast=fast, n_boot=n_boot).n_boot == want  # the tabular section's count
    assert spies == {"group": [want], "bias": [want]}
    assert sec.params["n_boot"] == want


def test_n_boot_and_sensitive_on_the_command_line_reach_both_parts(
    folder_csv: tuple[Path, Path], spies: dict[str, list[int]], tmp_path: Path
) -> None:
    folder, csv = folder_csv
    out = tmp_path / "f.json"
    args = ["fairness", str(folder), "--data", str(csv), "--target", "label", "--sensitive", "group"]
    r = CliRunner().invoke(cli, [*args, "--fast", "--n-boot", "3", "--json", str(out), "-q"])
    assert r.exit_code in (0, 1), r.output
    assert spies == {"group": [3], "bias": [3]}  # --sensitive names the Jigsaw AUCs' identity columns too
    sec = next(s for s in json.loads(out.read_text())["sections"] if s["name"] == "fairness")
    notes = [m["note"] for m in sec["metrics"] if m["name"].startswith("fairness.group.")]
    # the column is found among the file's other columns (it was "not in the data (columns: text)" before);
    # six texts are too few to judge, and the note says so
    assert any("fewer than two groups have at least 30 samples" in n for n in notes), notes
    assert not any("not in the data" in n for n in notes), notes
