"""Hugging Face folders (save_pretrained): a tiny ViT, ResNet and BERT built from configs, loaded with transformers'
Auto classes, offline, without remote code, without writing to the folder; hostile or broken folders are one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dlaudit
from dlaudit.cli import cli
from dlaudit.text.vocab import Tokenizer, merge_to_words
from tests.formats.hf_folders import (
    IMAGE_MEAN,
    IMAGE_STD,
    snapshot,
    tiny_bert,
    tiny_resnet,
    tiny_vit,
    wordpiece_tokenizer,
)

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vit(tmp_path_factory.mktemp("hf") / "tiny-vit")


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_resnet(tmp_path_factory.mktemp("hf") / "tiny-resnet", num_labels=4, size=12)


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert")


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _info(path: Path, *extra: str) -> dict:
    code, out = _cli("info", str(path), "--json", "-", *extra)
    assert code == 0, out
    return json.loads(out[out.index("{") :])


def _one_line_error(path: Path, *extra: str) -> str:
    code, out = _cli("info", str(path), *extra)
    lines = [line for line in out.splitlines() if line.strip() and "WARNING" not in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


# -- images ------------------------------------------------------------------------------------


def test_info_on_a_vit_folder(vit: Path) -> None:
    before = snapshot(vit)
    info = _info(vit)
    assert info["format"] == "huggingface"
    card = info["card"]
    assert card["modality"] == "image" and card["input_shape"] == [3, 16, 16] and card["num_classes"] == 3
    assert card["class_names"] == ["cat", "dog", "fox"] and card["value_range"] == [0.0, 1.0]
    assert card["mean"] == IMAGE_MEAN and card["std"] == IMAGE_STD
    notes = info["load"]["huggingface"]
    assert notes["class"] == "ViTForImageClassification" and notes["weights"] == "model.safetensors"
    assert snapshot(vit) == before, "loading wrote to the model's folder"


def test_the_vit_bundle_is_the_hf_model_on_pixels_in_0_1(vit: Path) -> None:
    bundle = dlaudit.load_model(vit, device="cpu")
    hf = transformers.AutoModelForImageClassification.from_pretrained(str(vit), local_files_only=True).eval()
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0), requires_grad=True)
    mean, std = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    out = bundle.module(x)
    with torch.no_grad():
        want = hf(pixel_values=(x - mean) / std).logits
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)  # attacks and saliency take gradients in pixel space
    assert grad.abs().sum() > 0
    assert "applied by dlaudit in front of the loaded model" in bundle.normalisation
    assert not bundle.is_graph and bundle.supports_hooks


def test_a_resnet_folder_takes_its_shape_from_the_processor(resnet: Path) -> None:
    bundle = dlaudit.load_model(resnet, device="cpu")
    assert bundle.card.input_shape == (3, 12, 12) and bundle.card.num_classes == 4
    assert bundle.card.class_names == ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]
    assert bundle.load_notes["huggingface"]["processor"] == "ConvNextImageProcessor"
    assert bundle.predict(torch.rand(3, 3, 12, 12)).shape == (3,)


def test_card_flags_win_over_the_folder(resnet: Path) -> None:
    info = _info(resnet, "--input-shape", "3,20,20", "--class-names", "a,b,c,d")
    assert info["card"]["input_shape"] == [3, 20, 20] and info["card"]["class_names"] == ["a", "b", "c", "d"]


# -- text --------------------------------------------------------------------------------------


def test_info_on_a_bert_folder(bert: Path) -> None:
    before = snapshot(bert)
    info = _info(bert)
    card = info["card"]
    assert info["format"] == "huggingface" and card["modality"] == "text"
    assert card["num_classes"] == 2 and card["class_names"] == ["neg", "pos"]
    assert card["input_shape"] == [32]  # the tokenizer's model_max_length (the model has 64 positions)
    assert card["value_range"] == [0.0, 59.0]  # token ids
    assert info["load"]["huggingface"]["class"] == "BertForSequenceClassification"
    assert snapshot(bert) == before, "loading wrote to the model's folder"


def test_the_bert_bundle_reads_its_tokenizer_s_ids(bert: Path) -> None:
    bundle = dlaudit.load_model(bert, device="cpu")
    tok = bundle.tokenizer
    assert isinstance(tok, Tokenizer)
    assert (tok.pad_id, tok.unk_id, tok.mask_id, len(tok)) == (0, 1, 4, 60)
    enc = tok.encode(["a good film", "the plot was terribly slow!"])
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(bert), local_files_only=True).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(bert), local_files_only=True)
    want = hf_tok(["a good film", "the plot was terribly slow!"], padding=True, return_tensors="pt")
    assert torch.equal(enc.ids, want["input_ids"])  # right-padded with [PAD]: the same ids as HF's own padding
    with torch.no_grad():
        torch.testing.assert_close(bundle.module(enc.ids), hf(**want).logits, rtol=1e-5, atol=1e-6)
        one = tok.encode(["a text"]).ids
        torch.testing.assert_close(bundle.module(one), hf(input_ids=one).logits, rtol=1e-5, atol=1e-6)
    assert isinstance(bundle.module.embedding, torch.nn.Embedding)  # what HotFlip and word swaps hook


def test_the_test_tokenizer_is_the_same_every_time() -> None:
    vocabularies = [wordpiece_tokenizer().get_vocab() for _ in range(5)]  # tokenizers' trainer varied within a process
    assert all(v == vocabularies[0] for v in vocabularies) and len(vocabularies[0]) == 60
    assert wordpiece_tokenizer().tokenize("the plot was slow") == [
        "the",
        "p",
        "##l",
        "##o",
        "##t",
        "was",
        "s",
        "##l",
        "##o",
        "##w",
    ]


def test_the_tokenizer_keeps_offsets_and_words(bert: Path) -> None:
    tok = dlaudit.load_model(bert, device="cpu").tokenizer
    text = "The plot was slow"
    enc = tok.encode([text, "a good film"], min_len=12)
    n = int(enc.lengths[0])
    assert enc.ids.shape == (2, 12) and enc.ids[1, int(enc.lengths[1]) :].eq(tok.pad_id).all()
    assert enc.ids[0, 0].item() == 2 and enc.ids[0, n - 1].item() == 3  # [CLS] ... [SEP]
    assert enc.word_ids[0][0] is None and enc.word_ids[0][-1] is None  # special tokens belong to no word
    words = {}
    for (a, b), w in zip(enc.offsets[0], enc.word_ids[0]):
        if w is not None:
            words.setdefault(w, []).append(text[a:b].lower())
    assert ["".join(words[w]) for w in sorted(words)] == ["the", "plot", "was", "slow"]
    assert merge_to_words([1.0] * n, enc.word_ids[0]) == [float(len(words[w])) for w in sorted(words)]
    assert tok.decode(enc.ids[0]) == "[CLS] the plot was slow [SEP]"
    assert tok.tokenize("a good film")[0] == "a" and enc.n_tokens == [n, int(enc.lengths[1])]
    cut = tok.encode(["the acting was great and the plot was slow"], max_len=5)
    assert cut.ids.shape == (1, 5) and cut.truncated == 1 and cut.n_tokens[0] > 5


def test_a_tokenizer_of_another_model_is_one_line(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path / "bert-1000", vocab_size=1000)
    assert "the tokenizer has 60 tokens but the model's embedding has 1,000 rows" in _one_line_error(folder)


def test_a_folder_without_its_tokenizer_files_is_one_line(bert: Path, tmp_path: Path) -> None:
    folder = _copy(bert, tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()  # transformers then builds a tokenizer of the 5 special tokens, and every word is UNK
    message = _one_line_error(folder)
    assert "the tokenizer has only its 5 special tokens" in message and "tokenizer.save_pretrained" in message


def test_a_text_folder_without_data_names_text_data(bert: Path) -> None:
    code, out = _cli("report", str(bert))
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out
    assert "pass --data (e.g. --data synthetic-text, or a .csv/.jsonl file with --text-column" in lines[0]


# -- refusals ----------------------------------------------------------------------------------


def test_remote_code_is_refused(vit: Path, tmp_path: Path) -> None:
    folder = _copy(vit, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('ran code from the folder')\n")
    message = _one_line_error(folder)
    assert "asks for the model's own code" in message and "never runs code" in message


def test_pickled_weights_need_trust_pickle(vit: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    folder = _copy(vit, tmp_path)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    message = _one_line_error(folder)
    assert "pytorch_model.bin holds pickled weights" in message and "--trust-pickle" in message
    info = _info(folder, "--trust-pickle")
    assert info["load"]["huggingface"]["weights"] == "pytorch_model.bin" and info["card"]["num_classes"] == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-config", "is a directory, not a model file (dlaudit reads a Hugging Face folder with config.json)"),
        ("not-hf", "config.json has no model_type, so it is not a Hugging Face model folder"),
        ("bad-json", "config.json is not valid JSON"),
        ("no-weights", "holds config.json but no PyTorch weights"),
        ("base-model", "holds a ViTModel, not a classifier"),
        ("no-head", "the weights lack classifier.bias, classifier.weight of ViTForImageClassification"),
        ("shard-outside", "the weights index names '../outside.safetensors', not a file of the model's folder"),
    ],
)
def test_a_folder_that_is_not_a_model_is_one_line(vit: Path, tmp_path: Path, change: str, message: str) -> None:
    folder = _copy(vit, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    if change == "no-config":
        (folder / "config.json").unlink()
    elif change == "not-hf":
        (folder / "config.json").write_text(json.dumps({"name": "my app", "debug": True}))
    elif change == "bad-json":
        (folder / "config.json").write_text("{model_type: vit")
    elif change == "no-weights":
        (folder / "model.safetensors").unlink()
    elif change == "base-model":
        (folder / "config.json").write_text(json.dumps({**config, "architectures": ["ViTModel"]}))
    elif change == "no-head":
        from safetensors.torch import load_file, save_file

        weights = load_file(str(folder / "model.safetensors"))
        save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, folder / "model.safetensors")
    elif change == "shard-outside":
        (folder / "model.safetensors").rename(tmp_path / "outside.safetensors")
        index = {"weight_map": {"classifier.bias": "../outside.safetensors"}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert message in _one_line_error(folder)


def test_without_transformers_says_the_extra(vit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    assert "needs transformers: pip install dlaudit[text]" in _one_line_error(vit)


def test_a_report_written_into_the_folder_must_be_a_new_file(vit: Path, tmp_path: Path) -> None:
    folder = _copy(vit, tmp_path)
    code, out = _cli("info", str(folder), "--json", str(folder / "config.json"))
    assert code == 2 and "config.json" in out
    assert json.loads((folder / "config.json").read_text())["model_type"] == "vit"


def test_report_on_an_image_folder(vit: Path, tmp_path: Path) -> None:
    """The issue's command: `dlaudit report ./hf-vit/ --data folder:DIR`, images resized to the processor's size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "fox"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    before = snapshot(vit)
    out = tmp_path / "r.json"
    argv = ["report", str(vit), "--data", f"folder:{tmp_path / 'images'}", "--checks", "performance", "--quiet"]
    code, output = _cli(*argv, "-o", str(tmp_path / "r.html"), "--json", str(out))
    assert code in (0, 1), output  # 1: a random model fails the accuracy check, which is the report's finding
    doc = json.loads(out.read_text())
    assert doc["provenance"]["model"]["format"] == "huggingface" and doc["card"]["class_names"] == ["cat", "dog", "fox"]
    assert doc["provenance"]["model"]["load"]["huggingface"]["class"] == "ViTForImageClassification"
    assert "applied by dlaudit in front of the loaded model" in doc["provenance"]["model"]["normalisation"]
    assert snapshot(vit) == before
