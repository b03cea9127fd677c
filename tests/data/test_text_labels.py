"""How a text file's labels map to a model's classes (its id2label): by name, by index, or in sorted order."""

from __future__ import annotations

import pytest
import torch

from dlaudit.data.core import Splits
from dlaudit.data.text import align_labels
from dlaudit.errors import DataError
from dlaudit.text.data import TextData


def _splits(labels: list[str]) -> Splits:
    """A file's labels as the loader reads them: classes in sorted order, each row the index of its label."""
    classes = sorted(set(labels), key=lambda c: (float(c), c) if c.lstrip("-").replace(".", "").isdigit() else (0, c))
    y = torch.tensor([classes.index(c) for c in labels])
    part = TextData(texts=[f"text {i}" for i in range(len(labels))], y=y, name="f.csv", class_names=classes)
    return Splits(part, part, part)


def _mapped(labels: list[str], model: list[str]) -> tuple[list[str], list[str]]:
    """Each row's class on the model, by name, and the notes."""
    part = align_labels(_splits(labels), model).test
    return [model[int(i)] for i in part.y], part.notes


def test_integer_labels_are_the_model_s_class_indices() -> None:
    assert _mapped(["0", "1", "1", "0"], ["NEGATIVE", "POSITIVE"]) == (
        ["NEGATIVE", "POSITIVE", "POSITIVE", "NEGATIVE"],
        [],
    )
    assert _mapped(["1", "0"], ["POSITIVE", "NEGATIVE"])[0] == ["NEGATIVE", "POSITIVE"]  # by index, not by meaning
    got, notes = _mapped(["0", "2", "2"], ["neg", "neutral", "pos"])  # a class the file lacks: by value, not rank
    assert got == ["neg", "pos", "pos"] and notes == ["labels taken as the model's class indices (2 1->2)"]


@pytest.mark.parametrize("labels", [["1", "2"], ["-1", "1"]])
def test_integer_labels_outside_the_model_s_indices_are_refused(labels: list[str]) -> None:
    with pytest.raises(
        DataError, match=r"class indices, but \[.*\] are not all in 0\.\.1 \(0: NEGATIVE, 1: POSITIVE\)"
    ):
        align_labels(_splits(labels), ["NEGATIVE", "POSITIVE"])


def test_class_names_map_by_name_whatever_their_case_and_order() -> None:
    got, notes = _mapped(["negative", "positive ", "negative"], ["Positive", "NEGATIVE"])
    assert got == ["NEGATIVE", "Positive", "NEGATIVE"] and "re-indexed" in notes[0]
    assert _mapped(["pos", "neg"], ["neg", "neutral", "pos"])[0] == ["pos", "neg"]  # a subset of the classes


def test_labels_that_are_partly_class_names_are_refused() -> None:
    # sorted, non-toxic would be 0 = the model's "toxic": a silent inversion
    with pytest.raises(
        DataError, match=r"labels \['non-toxic'\] are not among the model's classes \(0: toxic, 1: clean\)"
    ):
        align_labels(_splits(["toxic", "non-toxic"]), ["toxic", "clean"])


def test_other_labels_map_in_sorted_order_and_say_so() -> None:
    got, notes = _mapped(["pos", "neg"], ["LABEL_0", "LABEL_1"])
    assert got == ["LABEL_1", "LABEL_0"]
    assert notes == ["labels are not the model's class names; mapped in sorted order (neg -> LABEL_0, pos -> LABEL_1)"]


def test_a_model_s_own_labels_are_left_as_they_are() -> None:
    splits = _splits(["1", "0"])
    assert align_labels(splits, ["0", "1"]) is not splits  # a new Splits, the same parts
    assert align_labels(splits, ["0", "1"]).test is splits.test
