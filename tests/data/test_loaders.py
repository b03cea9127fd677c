"""Data loaders: the embedded digits, MNIST's real IDX reader, npz, csv, UCI files, synthetic-credit."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
import torch

import dlaudit
from dlaudit.data import load_splits
from dlaudit.data.tabular import synthetic_credit_frame
from dlaudit.data.validate import check_fits
from dlaudit.errors import DataError


def test_digits_is_fixed_scaled_and_stratified():
    a, b = load_splits("digits"), load_splits("digits")
    assert a.train.x.shape == (1347, 1, 8, 8) and a.test.x.shape == (450, 1, 8, 8)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert float(a.train.x.min()) == 0.0 and float(a.train.x.max()) == 1.0
    counts = torch.bincount(a.test.y, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47  # stratified: about 45 of each digit
    assert a.test.class_names == [str(i) for i in range(10)]


def _write_idx(path, array: np.ndarray) -> None:
    dims = array.shape
    code = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_reads_real_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 12)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    splits = load_splits(name, data_dir=tmp_path)
    assert splits.train.x.shape == (30, 1, 28, 28) and splits.test.x.shape == (12, 1, 28, 28)
    assert splits.test.y.tolist() == [i % 10 for i in range(12)]
    assert 0.0 <= float(splits.train.x.min()) and float(splits.train.x.max()) <= 1.0
    assert len(splits.test.class_names) == 10


def test_mnist_missing_files_say_where(tmp_path, monkeypatch):
    from torchvision import datasets

    def no_network(self, *a, **k):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(datasets.MNIST, "download", no_network)
    with pytest.raises(DataError, match="MNIST/raw"):
        load_splits("mnist", data_dir=tmp_path)


def test_npz_formats(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "a.npz", x=x, y=y)
    s = load_splits(tmp_path / "a.npz")
    assert s.train.x.shape == (30, 1, 6, 6) and s.test.x.shape == (10, 1, 6, 6)
    assert float(s.train.x.max()) <= 1.0
    np.savez(
        tmp_path / "b.npz", x_train=x[:30, None] / 255.0, y_train=y[:30], x_test=x[30:, None] / 255.0, y_test=y[30:]
    )
    s = load_splits(tmp_path / "b.npz")
    assert s.train.x.shape == (30, 1, 6, 6) and s.test.x.shape == (10, 1, 6, 6)
    tab = tmp_path / "t.npz"
    np.savez(tab, x=rng.normal(size=(40, 3)), y=y)
    assert load_splits(tab).train.modality == "tabular"


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.full((10, 4, 4), 2.0), "y": np.zeros(10, int)}, r"span \[2, 2\]"),
        ({"x": np.full((10, 4, 4), np.nan), "y": np.zeros(10, int)}, "NaN"),
        ({"x": np.zeros((10, 4, 4)), "y": np.full(10, -1)}, "class indices"),
        ({"x": np.zeros((10, 4, 4))}, "needs x and y"),
        ({"x": np.zeros((0, 4, 4)), "y": np.zeros(0, int)}, "empty"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_splits(tmp_path / "bad.npz")


def test_missing_and_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_splits(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; use one of digits"):
        load_splits("imagenet")
    with pytest.raises(DataError, match="adult.data not found"):
        load_splits("adult", data_dir=tmp_path)


@pytest.fixture()
def loans_csv(tmp_path):
    rng = np.random.default_rng(1)
    n = 80
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n).round(1),
            "region": rng.choice(["north", "south", "east"], n),
            "sex": rng.choice(["f", "m"], n),
            "label": rng.choice(["deny", "grant"], n),
        }
    )
    path = tmp_path / "loans.csv"
    frame.to_csv(path, index=False)
    return path


def test_csv_encodes_and_reencodes_the_same_way(loans_csv, tmp_path):
    s = load_splits(loans_csv, target="label", sensitive="sex")
    assert s.train.modality == "tabular" and s.train.x.shape[1] == 1 + 3 + 2
    assert s.train.feature_names == ["income", "region=east", "region=north", "region=south", "sex=f", "sex=m"]
    assert list(s.test.sensitive.columns) == ["sex"]
    assert float(s.train.x.min()) >= 0.0 and float(s.train.x.max()) <= 1.0
    again = load_splits(loans_csv, target="label", sensitive="sex", encoder=s.train.encoder)
    assert torch.equal(again.test.x, s.test.x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": "nope"}, "unknown target column 'nope'"),
        ({"target": "label", "sensitive": "age"}, "unknown sensitive column"),
        ({}, "needs --target"),
    ],
)
def test_csv_bad_columns(loans_csv, kwargs, message):
    with pytest.raises(DataError, match=message):
        load_splits(loans_csv, **kwargs)


def test_csv_nan_and_empty(tmp_path):
    p = tmp_path / "nan.csv"
    p.write_text("a,b,y\n1,2,0\n,3,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20)))
    with pytest.raises(DataError, match="'a' has NaN"):
        load_splits(p, target="y")
    e = tmp_path / "empty.csv"
    e.write_text("a,b,y\n")
    with pytest.raises(DataError, match="no data rows"):
        load_splits(e, target="y")


def test_adult_and_german(shared_data):
    adult = load_splits("adult", data_dir=shared_data / "adult")
    assert len(adult.train) == 30162 and len(adult.test) == 15060  # rows with '?' dropped
    assert adult.test.class_names == ["<=50K", ">50K"]
    assert 0.23 < float(adult.test.y.float().mean()) < 0.26
    assert set(adult.test.sensitive["sex"]) == {"Male", "Female"}
    german = load_splits("german", data_dir=shared_data / "german")
    assert len(german.train) + len(german.test) == 1000
    assert german.train.class_names == ["bad", "good"]
    assert set(german.train.sensitive.columns) == {"sex", "age"}


@pytest.mark.parametrize("bias", [0.0, 0.2, 0.35])
def test_synthetic_credit_bias_is_as_documented(bias):
    frame = synthetic_credit_frame(20000, bias=bias, seed=3)
    rates = frame.assign(pos=frame["approved"] == "yes").groupby("sex")["pos"].mean()
    assert rates["male"] - rates["female"] == pytest.approx(bias, abs=0.02)
    assert frame.equals(synthetic_credit_frame(20000, bias=bias, seed=3))


def test_check_fits(digits_cnn):
    data = dlaudit.load_data("digits")
    check_fits(digits_cnn.card, data)
    with pytest.raises(DataError, match=r"shape \(1, 4, 4\).*expects \(1, 8, 8\)"):
        check_fits(
            digits_cnn.card, data.__class__(torch.zeros(3, 1, 4, 4), torch.zeros(3, dtype=torch.long), name="small")
        )
    with pytest.raises(
        DataError, match=r"outside the model's 10 classes .*; give the data .* the model was trained on"
    ):
        check_fits(digits_cnn.card, data.__class__(torch.zeros(3, 1, 8, 8), torch.tensor([0, 3, 12]), name="labels"))
    with pytest.raises(DataError, match=r"value range \[0, 1\]"):
        check_fits(
            digits_cnn.card,
            data.__class__(torch.full((3, 1, 8, 8), 255.0), torch.zeros(3, dtype=torch.long), name="raw"),
        )
    with pytest.raises(DataError, match="NaN"):
        check_fits(
            digits_cnn.card,
            data.__class__(torch.full((3, 1, 8, 8), float("nan")), torch.zeros(3, dtype=torch.long), name="nan"),
        )
