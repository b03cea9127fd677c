"""The text fairness section uses the card's positive class, and text labels follow the model's class names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.errors import CardError
from dlaudit.fairness.text_section import fairness_text
from tests.formats.hf_folders import tiny_bert

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

TEXTS = [
    "a good film by a woman",
    "a bad film by a man",
    "the acting of the muslim cast was great",
    "the christian plot was terrible and slow",
    "i loved every minute of it , she said",
    "i hated the ending , he said",
    "a fine cast and a dull script from the men",
    "the women were great",
]


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny BERT whose id2label is {0: pos, 1: neg} (positive first), and a csv of neg/pos texts."""
    root = tmp_path_factory.mktemp("pos")
    folder = tiny_bert(root / "bert")
    config = json.loads((folder / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "pos", "1": "neg"}, {"pos": 0, "neg": 1}
    (folder / "config.json").write_text(json.dumps(config))
    csv = root / "reviews.csv"
    labels = ["pos", "neg", "pos", "neg", "pos", "neg", "neg", "pos"]
    group = ["f", "m", "f", "m", "f", "m", "m", "f"]
    pd.DataFrame({"text": TEXTS, "label": labels, "group": group}).to_csv(csv, index=False)
    return folder, csv


def test_labels_follow_the_model_s_class_names(swapped: tuple[Path, Path]) -> None:
    folder, csv = swapped
    bundle = dlaudit.load_model(folder, device="cpu")
    data = dlaudit.load_data(csv, bundle=bundle, split="all", text_column="text", target="label")
    assert data.class_names == ["pos", "neg"]
    want = [0 if t == "pos" else 1 for t in pd.read_csv(csv)["label"]]
    assert data.y.tolist() == want  # sorted order would have made "neg" 0
    assert any("re-indexed" in n for n in data.notes)


def test_the_positive_class_comes_from_the_card(swapped: tuple[Path, Path]) -> None:
    folder, csv = swapped
    default = dlaudit.load_model(folder, device="cpu")
    named = dlaudit.load_model(folder, device="cpu", positive_class="pos")
    assert (default.card.positive_index, named.card.positive_index) == (1, 0)
    data = dlaudit.load_data(csv, bundle=named, split="all", text_column="text", target="label", sensitive="group")
    a = fairness_text(default, data, seed=0, fast=True, n_boot=0)
    b = fairness_text(named, data, seed=0, fast=True, n_boot=0)
    assert (a.params["positive_class"], b.params["positive_class"]) == ("neg", "pos")
    col_a, col_b = a.tables[0].columns[5], b.tables[0].columns[5]
    assert (col_a, col_b) == ("mean change of P(neg)", "mean change of P(pos)")
    # rows keyed by their pair (the table sorts by size, and deltas this small can swap places)
    rows_a = {tuple(map(str, r[:3])): r[5] for r in a.tables[0].rows}
    rows_b = {tuple(map(str, r[:3])): r[5] for r in b.tables[0].rows}
    assert rows_a.keys() == rows_b.keys() and len(rows_a) == len(a.tables[0].rows)
    deltas_a = np.array([rows_a[k] for k in sorted(rows_a)], dtype=float)
    deltas_b = np.array([rows_b[k] for k in sorted(rows_a)], dtype=float)
    assert len(deltas_a) and np.abs(deltas_a).max() > 0
    np.testing.assert_allclose(deltas_b, -deltas_a, atol=1e-6)  # P(pos) = 1 - P(neg)


def test_a_positive_class_that_is_not_a_class_is_one_line(swapped: tuple[Path, Path]) -> None:
    folder, _ = swapped
    with pytest.raises(
        CardError, match=r"positive_class 'toxic' is not one of the class names .*; name one of them"
    ) as info:
        dlaudit.load_model(folder, device="cpu", positive_class="toxic")
    assert "\n" not in str(info.value)


def test_integer_labels_are_indices_and_mixed_labels_are_one_line(swapped: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = swapped  # id2label {0: pos, 1: neg}
    bundle = dlaudit.load_model(folder, device="cpu")
    ints, mixed = tmp_path / "ints.csv", tmp_path / "mixed.csv"
    pd.DataFrame({"text": TEXTS[:4], "label": [1, 0, 0, 1]}).to_csv(ints, index=False)
    pd.DataFrame({"text": TEXTS[:4], "label": ["pos", "negative", "pos", "negative"]}).to_csv(mixed, index=False)
    data = dlaudit.load_data(ints, bundle=bundle, split="all", text_column="text", target="label")
    assert data.y.tolist() == [1, 0, 0, 1]  # 1 is the model's class 1 ("neg"), whatever the name
    args = ["report", str(folder), "--data", str(mixed), "--text-column", "text", "-o", str(tmp_path / "r.html")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [
        "dlaudit: error: data 'mixed': labels ['negative'] are not among the model's classes (0: pos, 1: neg) while "
        "['pos'] are; label every row with a class name of the model or its index"
    ]
