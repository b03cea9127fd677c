"""folder:DIR, the image-folder layout: class names from sub-folders, images resized to the model's input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dlaudit
from dlaudit.card import ModelCard
from dlaudit.data import for_card, load_splits
from dlaudit.errors import DataError


def _images(root: Path, classes: dict[str, int], *, size: tuple[int, int] = (20, 24), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)
            img.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_sub_folders_are_classes_and_images_are_resized_to_the_card(tmp_path: Path) -> None:
    _images(tmp_path / "pets", {"dog": 6, "cat": 6})
    card = ModelCard(input_shape=(3, 16, 16), num_classes=2)
    data = for_card(card, f"folder:{tmp_path / 'pets'}")
    assert data.x.shape[1:] == (3, 16, 16) and data.class_names == ["cat", "dog"]
    assert data.split == "test" and len(data) == 3  # 25% of 12, stratified
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0


def test_without_a_card_images_keep_the_first_ones_size(tmp_path: Path) -> None:
    _images(tmp_path / "d", {"a": 4, "b": 4}, size=(20, 24))
    splits = load_splits(f"folder:{tmp_path / 'd'}")
    assert splits.train.x.shape[1:] == (3, 24, 20)


def test_greyscale_for_one_channel_models(tmp_path: Path) -> None:
    _images(tmp_path / "d", {"a": 4, "b": 4})
    data = dlaudit.load_data(f"folder:{tmp_path / 'd'}", split="train")
    assert data.x.shape[1] == 3
    grey = for_card(ModelCard(input_shape=(1, 8, 8), num_classes=2), f"folder:{tmp_path / 'd'}", split="train")
    assert grey.x.shape[1:] == (1, 8, 8)


def test_train_and_test_folders(tmp_path: Path) -> None:
    _images(tmp_path / "d" / "train", {"a": 3, "b": 3})
    _images(tmp_path / "d" / "val", {"a": 2, "b": 1})
    splits = load_splits(f"folder:{tmp_path / 'd'}")
    assert (len(splits.train), len(splits.test)) == (6, 3)
    assert torch.equal(splits.test.y, torch.tensor([0, 0, 1]))


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "d" / "cat").mkdir(parents=True)
    (tmp_path / "d" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no images"):
        load_splits(f"folder:{tmp_path / 'd'}")


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    _images(tmp_path / "d", {"a": 3, "b": 3})
    (tmp_path / "d" / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken\.png could not be read as an image"):
        load_splits(f"folder:{tmp_path / 'd'}")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        load_splits(f"folder:{tmp_path / 'nowhere'}")
