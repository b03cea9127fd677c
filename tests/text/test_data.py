from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from dlaudit.errors import DataError
from dlaudit.text.data import load_text_file, to_audit_data
from dlaudit.text.vocab import WordVocab


def _frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "body": [f"text number {i} is {'bad' if i % 2 else 'fine'}" for i in range(n)],
            "y": [i % 2 for i in range(n)],
            "group": ["a" if i < n // 2 else "b" for i in range(n)],
        }
    )


def test_csv_without_split_column_is_split_seeded_and_stratified(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame(20).to_csv(path, index=False)
    splits = load_text_file(path, text_column="body", target="y", sensitive=["group"], seed=3)
    assert (len(splits.train), len(splits.test), len(splits.whole)) == (15, 5, 20)
    assert splits.train.class_names == ["0", "1"]
    assert sorted(splits.test.y.tolist()) in ([0, 0, 1, 1, 1], [0, 0, 0, 1, 1])
    assert splits.train.sensitive.columns.tolist() == ["group"]
    assert "seed 3" in splits.train.notes[0]
    again = load_text_file(path, text_column="body", target="y", sensitive=["group"], seed=3)
    assert again.test.texts == splits.test.texts
    assert load_text_file(path, text_column="body", target="y", seed=4).test.texts != splits.test.texts


def test_jsonl_gz_with_split_column(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    rows = [
        {"text": f"row {i}", "label": "yes" if i % 3 else "no", "split": "test" if i < 4 else "train"}
        for i in range(12)
    ]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    splits = load_text_file(path)
    assert splits.test.texts == ["row 0", "row 1", "row 2", "row 3"]
    assert splits.train.class_names == ["no", "yes"]
    assert splits.test.y.tolist() == [0, 1, 1, 0]
    assert splits.train.name == "t"
    assert load_text_file(path, positive="no").train.class_names == ["yes", "no"]


def test_empty_texts_are_left_out_with_a_note(tmp_path: Path) -> None:
    frame = _frame(12)
    frame.loc[[0, 5], "body"] = ["", "   "]
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    splits = load_text_file(path, text_column="body", target="y")
    assert len(splits.whole) == 10
    assert "2 row(s) with an empty text" in splits.whole.notes[0]


def test_na_like_words_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["NA", "null", "None", "n/a"] * 2, "label": [0, 1] * 4}).to_csv(path, index=False)
    assert sorted(set(load_text_file(path).whole.texts)) == ["NA", "None", "n/a", "null"]


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        (b"body,y\n,0\n,1\n", {"text_column": "body", "target": "y"}, "empty in every row"),
        (b"text,y\na,0\nb,1\n", {}, "unknown target column 'label'; columns are: text, y"),
        (b"words,label\na,0\nb,1\n", {}, "unknown text column 'text'.*--text-column"),
        (b"text,label\na,0\nb,\nc,1\nd,0\n", {}, "target column 'label' has missing values in 1 row"),
        (b"text,label\na,0\nb,0\nc,0\n", {}, "single value"),
        (b"text,label,split\na,0,train\nb,1,dev\n", {}, "use 'train' and 'test' only"),
        (b"text,label,split\na,0,train\nb,1,train\n", {}, "has no test rows"),
        (b"text,label\na,0\nb,1\n", {}, "at least 4 are needed"),
        (b"text,label\n1,0\n2,1\n3,0\n4,1\n", {}, "non-text values"),
        (b"text,label\ncaf\xe9,0\nb,1\n", {}, "not UTF-8 text .* re-save it as UTF-8"),
        (b"", {}, "has no rows"),
        (b"text,label\na,0\nb,1\n", {"sensitive": ["sex"]}, "unknown sensitive column"),
    ],
)
def test_bad_input_is_one_line_data_error(tmp_path: Path, content: bytes, kwargs: dict, match: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        load_text_file(path, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_text_file(tmp_path / "missing.csv")
    (tmp_path / "t.txt").write_text("text,label\n")
    with pytest.raises(DataError, match="suffix .txt"):
        load_text_file(tmp_path / "t.txt")
    (tmp_path / "t.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_text_file(tmp_path / "t.csv.gz")
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": 0}\n[1, 2]\n')
    with pytest.raises(DataError, match="JSON object"):
        load_text_file(tmp_path / "t.jsonl")
    (tmp_path / "u.jsonl").write_text('{"text": "a", "label": 0}\n{"text": \n')
    with pytest.raises(DataError, match="u.jsonl: line 2 is not valid JSON"):  # the line, not json's "line 1"
        load_text_file(tmp_path / "u.jsonl")


def test_subset_and_adapter(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame(8).to_csv(path, index=False)
    data = load_text_file(path, text_column="body", target="y", sensitive=["group"]).whole
    sub = data.subset([1, 3])
    assert sub.texts == [data.texts[1], data.texts[3]] and sub.y.tolist() == [1, 1]
    assert sub.sensitive["group"].tolist() == ["a", "a"]
    assert len(data.subset(data.y.numpy() == 1)) == 4
    vocab = WordVocab.build(data.texts, min_count=1, max_len=3)
    audit = to_audit_data(data, vocab)
    assert audit.modality == "text" and audit.x.dtype == torch.long and audit.x.shape == (8, 3)
    assert audit.raw["body"].tolist() == data.texts
    assert any("8 of 8 text(s) were longer than 3 tokens" in n for n in audit.notes)


def test_shared_sms_spam(shared_text: Path) -> None:
    splits = load_text_file(shared_text / "sms_spam.csv.gz")
    assert (len(splits.train), len(splits.test)) == (4128, 1032)
    assert int(splits.train.y.sum()) == 514 and int(splits.test.y.sum()) == 128


def test_shared_hatexplain_identity_columns(shared_text: Path) -> None:
    groups = ["african", "islam", "jewish", "women", "homosexual"]
    splits = load_text_file(shared_text / "hatexplain_identity.csv.gz", sensitive=groups)
    assert (len(splits.train), len(splits.test)) == (16087, 4022)
    assert int(splits.test.y.sum()) == 2458
    assert int(splits.whole.sensitive["african"].sum()) == 3769
    assert int(splits.whole.sensitive["islam"].sum()) == 2559
