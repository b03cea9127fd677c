from __future__ import annotations

import io

import pytest
import torch

from dlaudit.errors import CardError, ConfigError
from dlaudit.models.text import EmbeddingBagClassifier, TextCNN
from dlaudit.text.train import TextClassifier, train_text_model


@pytest.mark.parametrize("cls", [TextCNN, EmbeddingBagClassifier])
def test_padding_never_changes_the_logits(cls: type) -> None:
    torch.manual_seed(0)
    model = cls(50, 3, embed_dim=8).eval()
    ids = torch.tensor([[5, 6, 7, 0], [9, 0, 0, 0]])
    longer = torch.cat([ids, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    out = model(ids)
    assert out.shape == (2, 3)
    assert torch.allclose(out, model(longer), atol=1e-6)
    assert torch.allclose(out[1:], model(ids[1:, :1]), atol=1e-6)  # shorter than the widest kernel
    assert torch.isfinite(model(torch.zeros(1, 4, dtype=torch.long))).all()  # an all-PAD row
    assert isinstance(model.embedding, torch.nn.Embedding)


def test_embedding_bag_is_the_masked_mean() -> None:
    torch.manual_seed(0)
    model = EmbeddingBagClassifier(20, 2, embed_dim=4, hidden=0).eval()
    bag = torch.nn.EmbeddingBag(20, 4, mode="mean", padding_idx=0)
    bag.weight.data.copy_(model.embedding.weight.data)
    ids = torch.tensor([[3, 4, 0], [5, 0, 0]])
    assert torch.allclose(model(ids), model.head(bag(ids)), atol=1e-6)


def test_bad_model_arguments() -> None:
    with pytest.raises(ConfigError, match="pad_id"):
        TextCNN(10, 2, pad_id=10)
    with pytest.raises(ConfigError, match="num_classes"):
        EmbeddingBagClassifier(10, 1)
    with pytest.raises(ConfigError, match="kernel_sizes"):
        TextCNN(10, 2, kernel_sizes=())


@pytest.mark.parametrize("fixture", ["bag_model", "cnn_model"])
def test_reference_models_learn_synthetic_text(request: pytest.FixtureRequest, fixture: str, synth) -> None:
    clf: TextClassifier = request.getfixturevalue(fixture)
    clear = torch.tensor((synth.test.sensitive["ambiguous"] == 0).to_numpy())
    right = clf.predict_proba(synth.test.texts).argmax(1) == synth.test.y
    # the best accuracy is about 1 - 0.2 / 2 (ambiguous comments have coin-flip labels) less the injected noise
    assert right.float().mean().item() > 0.85
    assert right[clear].float().mean().item() > 0.95
    assert not clf.module.training
    assert clf.history[-1] < clf.history[0]


def test_training_is_seeded(synth) -> None:
    a = train_text_model("embedding-bag", synth.train.head(200), seed=5, epochs=1)
    b = train_text_model("embedding-bag", synth.train.head(200), seed=5, epochs=1)
    for (ka, va), (_, vb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_checkpoint_loads_with_weights_only(cnn_model: TextClassifier, synth) -> None:
    buf = io.BytesIO()
    torch.save(cnn_model.checkpoint(), buf)
    buf.seek(0)
    again = TextClassifier.from_checkpoint(torch.load(buf, weights_only=True))
    texts = synth.test.texts[:20]
    assert torch.allclose(again.predict_proba(texts), cnn_model.predict_proba(texts))
    assert again.vocab == cnn_model.vocab and again.arch == "textcnn"
    with pytest.raises(CardError):
        TextClassifier.from_checkpoint({"kind": "else"})
    with pytest.raises(ConfigError, match="unknown text model"):
        train_text_model("lstm", synth.train)
