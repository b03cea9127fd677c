"""The stratification rule shared by the image, table and text splits: tiny data splits, never sklearn's error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dlaudit.cli import cli
from dlaudit.data.split import stratify_on
from dlaudit.text.data import load_text_file


@pytest.mark.parametrize(
    ("labels", "stratified"),
    [
        (["a", "b"] * 4, True),  # 8 rows: 2 held out, one of each class
        (["a", "a", "b", "b", "c", "c"], False),  # 2 held out for 3 classes: sklearn would raise
        (["a", "a", "b", "b", "c"], False),  # a class with one row
        (["a"] * 6, False),  # one class
        (["a", "a", "b", "b", "c", "c"] * 2, True),  # 3 held out, 9 for training
    ],
)
def test_stratify_only_where_each_part_can_hold_every_class(labels: list[str], stratified: bool) -> None:
    assert (stratify_on(np.asarray(labels), 0.25) is not None) is stratified


def test_six_texts_of_three_classes_split_at_random(tmp_path: Path) -> None:
    path = tmp_path / "six.csv"
    pd.DataFrame({"text": ["good", "bad", "great", "awful", "fine", "ok"], "label": list("ppnnmm")}).to_csv(
        path, index=False
    )
    splits = load_text_file(path)
    assert len(splits.train) + len(splits.test) == 6 and len(splits.test) == 2
    assert "too few texts per class to stratify" in splits.test.notes[-1]


def test_a_six_row_table_of_three_classes_trains(tmp_path: Path) -> None:
    path = tmp_path / "six.csv"
    pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": list("aabbcc")}).to_csv(path, index=False)
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(
        cli, ["train", "mlp", "--data", str(path), "--target", "y", "--epochs", "1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "test_size" not in result.output
