"""Hugging Face folders (``save_pretrained``): image and text classifiers loaded with ``transformers``.

A folder with ``config.json`` and its weights (``model.safetensors``, or shards named by
``model.safetensors.index.json``) is loaded with ``transformers``' Auto classes,
``local_files_only=True`` (nothing is downloaded) and never ``trust_remote_code`` (a config,
tokenizer or processor that asks for the repository's own code, ``auto_map``, is refused).
Pickled weights (``pytorch_model.bin``) load only with ``trust_pickle=True``. Nothing in the
folder is written.

- **Images** (``AutoModelForImageClassification``: ViT, ResNet, ConvNeXt, ...): the module
  returns the output's ``logits``; the processor's (``preprocessor_config.json``)
  ``image_mean``/``image_std`` become the card's normalisation, which dlaudit applies in front
  of the model, so attacks and explanations work on pixels in [0, 1]; its size (or the
  config's ``image_size``) the input shape; ``id2label`` the class names.
- **Text** (``AutoModelForSequenceClassification`` with ``AutoTokenizer``): the module takes
  ``(N, L)`` token ids right-padded with the tokenizer's pad id (the attention mask is
  ``ids != pad_id``) and returns logits; the tokenizer becomes ``bundle.tokenizer``
  (:class:`dlaudit.text.hf_tokenizer.HFTokenizer`); the card's modality is ``"text"``, its
  input shape ``(max_len,)`` and its value range the token ids.

Needs ``transformers`` (``pip install dlaudit[text]``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError
from ..paths import read_input
from . import Loaded, LoadRequest, ModelFile, ModelFormat, register_format
from ._common import first_line, pickle_refused
from .safetensors import read_header

__all__ = [
    "EMBEDDING_PADDING",
    "FORMAT",
    "FirstTokenLayer",
    "HFImageClassifier",
    "HFTextClassifier",
    "MAX_JSON_BYTES",
]

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 16 * 2**20
"""Largest JSON file of the folder read by dlaudit itself (config, index, processor and tokenizer configs)."""
EMBEDDING_PADDING = 128
"""A model's token embedding may have more rows than its tokenizer has tokens, up to the next multiple of this
(models pad their vocabulary for speed); any other difference means the tokenizer is not the model's."""
_EXTRA = "pip install dlaudit[text]"
_SAFE = ("model.safetensors", "model.safetensors.index.json")
_PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
_PROCESSOR = "preprocessor_config.json"
_CONFIGS = ("config.json", _PROCESSOR, "tokenizer_config.json")
_TASKS = {"ForImageClassification": "image", "ForSequenceClassification": "text"}


class HFImageClassifier(nn.Module):
    """A ``transformers`` image classifier as a function of pixels: ``forward(x) -> logits``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


class HFTextClassifier(nn.Module):
    """A ``transformers`` sequence classifier as a function of right-padded token ids: ``forward(ids) -> logits``.

    The attention mask is ``ids != pad_id``; ``embedding`` is the model's token embedding
    (what gradient-based text attacks and attributions hook).
    """

    def __init__(self, model: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = int(pad_id)

    @property
    def embedding(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        return self.model(input_ids=ids, attention_mask=(ids != self.pad_id).long()).logits

    def first_token_only(self) -> HFTextClassifier | None:
        """This classifier with its last encoder layer computing the first position alone, or None where the model is
        not a BERT-style encoder (``base_model.encoder.layer`` of :class:`FirstTokenLayer`'s parts).

        A BERT, RoBERTa or ELECTRA classification head reads the last layer's first position (``[CLS]``/``<s>``)
        only, so the last layer's queries, attention output and feed-forward at the other positions are work
        nobody reads: on a 4-layer, 256-wide BERT, a quarter of the model's dense work (one layer of four less its
        keys and values). The copy shares this classifier's parameters and leaves it untouched (sections running
        in other threads keep the full model). Whether its logits equal the full model's is not assumed:
        :func:`dlaudit.text.model_io.text_proba` checks them on probe texts before it uses the copy."""
        model = self.model
        prefix = getattr(model, "base_model_prefix", None)
        base = model._modules.get(prefix) if isinstance(prefix, str) else None
        encoder = base._modules.get("encoder") if base is not None else None
        layers = encoder._modules.get("layer") if encoder is not None else None
        if not isinstance(layers, nn.ModuleList) or not len(layers) or not FirstTokenLayer.fits(layers[-1]):
            return None
        clone = _path_copy(model, [prefix, "encoder"])
        clone._modules[prefix]._modules["encoder"]._modules["layer"] = nn.ModuleList(
            [*list(layers)[:-1], FirstTokenLayer(layers[-1])]
        )
        fast = HFTextClassifier(clone, self.pad_id)
        fast.training = self.training  # its own flag only: the shared submodules keep theirs
        return fast


def _path_copy(module: nn.Module, path: list[str]) -> nn.Module:
    """A shallow copy of ``module`` and of its submodules along ``path``, whose child lists are their own (so one of
    them can be replaced); parameters, buffers and every other submodule are shared."""
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    if path:
        clone._modules[path[0]] = _path_copy(module._modules[path[0]], path[1:])
    return clone


class FirstTokenLayer(nn.Module):
    """A BERT-style encoder layer computed at the first position only: ``(N, L, d) -> (N, 1, d)``.

    Keys and values come from every position, the query, attention output and feed-forward from the first alone,
    with the layer's own modules (``attention.self.query/key/value``, ``attention.output``, ``intermediate``,
    ``output``) and the attention mask the encoder passes it (its first query row). Used in the copy
    :meth:`HFTextClassifier.first_token_only` makes, never in place.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.as_tuple = int(metadata.version("transformers").split(".")[0]) < 5
        """transformers 4's encoders read a layer's output as a tuple (``outputs[0]``), 5's as the tensor."""

    @staticmethod
    def fits(layer: nn.Module) -> bool:
        """Whether ``layer`` is a self-attention encoder layer with the parts this class computes with."""
        attention = getattr(layer, "attention", None)
        heads = getattr(attention, "self", None)
        parts = [getattr(heads, name, None) for name in ("query", "key", "value")]
        return (
            all(isinstance(part, nn.Linear) for part in parts)
            and isinstance(getattr(heads, "num_attention_heads", None), int)
            and isinstance(getattr(heads, "attention_head_size", None), int)
            and isinstance(getattr(heads, "scaling", 1.0), float)
            and getattr(heads, "position_embedding_type", "absolute") == "absolute"
            and all(
                isinstance(getattr(owner, name, None), nn.Module)
                for owner, name in ((attention, "output"), (layer, "intermediate"), (layer, "output"))
            )
            and not getattr(layer, "is_decoder", False)
            and not getattr(layer, "add_cross_attention", False)
        )

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *_: Any, **__: Any
    ) -> torch.Tensor:
        layer = self.layer
        heads = layer.attention.self
        n, width, _ = hidden_states.shape
        count, size = heads.num_attention_heads, heads.attention_head_size
        first = hidden_states[:, :1]
        query = heads.query(first).view(n, 1, count, size).transpose(1, 2)
        key = heads.key(hidden_states).view(n, width, count, size).transpose(1, 2)
        value = heads.value(hidden_states).view(n, width, count, size).transpose(1, 2)
        mask = (
            attention_mask[:, :, :1, :] if attention_mask is not None and attention_mask.dim() == 4 else attention_mask
        )
        scale = getattr(heads, "scaling", size**-0.5)
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
        attended = layer.attention.output(context.transpose(1, 2).reshape(n, 1, count * size), first)
        out = layer.output(layer.intermediate(attended), attended)
        return (out,) if self.as_tuple else out


def detect(file: ModelFile) -> bool:
    """A folder holding ``config.json``."""
    return file.path.is_dir() and (file.path / "config.json").is_file()


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise ModelLoadError(f"reading Hugging Face folders needs transformers: {_EXTRA} ({first_line(err)})") from err
    return transformers


def _json(path: Path) -> dict[str, Any]:
    """A JSON object of the folder, read with bounds; one line when it is not one."""
    raw = read_input(path, "model folder file", limit=MAX_JSON_BYTES, error=ModelLoadError)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise ModelLoadError(f"{path} is not valid JSON ({first_line(err)}); save the model again") from err
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path} holds a JSON {type(value).__name__}, not an object; save the model again")
    return value


def _no_remote_code(folder: Path) -> None:
    """Refuse a folder whose config, processor or tokenizer asks for code shipped with the model (``auto_map``)."""
    for name in _CONFIGS:
        path = folder / name
        if path.is_file() and _json(path).get("auto_map"):
            raise ModelLoadError(
                f"{folder}: {name} asks for the model's own code (auto_map, trust_remote_code); dlaudit never runs "
                "code from a model folder; use a model whose classes are part of transformers"
            )


def _task(folder: Path, config: dict[str, Any]) -> str:
    """``"image"`` or ``"text"``: from the architectures the config names, else from the folder's files."""
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    for arch in archs:
        for suffix, task in _TASKS.items():
            if arch.endswith(suffix):
                return task
    if archs:
        raise ModelLoadError(
            f"{folder} holds a {archs[0][:80]}, not a classifier; dlaudit audits Hugging Face "
            "...ForImageClassification and ...ForSequenceClassification models"
        )
    if (folder / _PROCESSOR).is_file():
        return "image"
    if any((folder / name).is_file() for name in _TOKENIZER_FILES):
        return "text"
    raise ModelLoadError(
        f"{folder}: config.json names no architecture and the folder has neither {_PROCESSOR} nor a tokenizer, "
        "so dlaudit cannot tell an image from a text classifier; save the model and its processor or tokenizer "
        "with save_pretrained"
    )


def _inside(folder: Path, name: Any) -> Path:
    """``folder / name`` when ``name`` is a plain file name of the folder (a shard named by an index)."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ModelLoadError(
            f"{folder}: the weights index names {str(name)[:120]!r}, not a file of the model's folder; "
            "dlaudit reads weights only from the folder itself"
        )
    return folder / name


def _weights(folder: Path, trust_pickle: bool) -> tuple[str, bool]:
    """The weights file (or index) to load and whether it is safetensors; headers checked, pickles refused."""
    single, index = (folder / name for name in _SAFE)
    if single.is_file():
        read_header(single)
        return single.name, True
    if index.is_file():
        weight_map = _json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelLoadError(f"{index} has no weight_map; save the model again")
        for name in sorted(set(weight_map.values()), key=str):
            shard = _inside(folder, name)
            if not shard.is_file():
                raise ModelLoadError(f"{index} names the shard {name[:120]!r}, which is missing")
            read_header(shard)
        return index.name, True
    for name in _PICKLED:
        if (folder / name).is_file():
            if not trust_pickle:
                raise pickle_refused(folder / name, "pickled weights")
            log.warning("reading %s with trust_pickle=True: its pickled weights are not checked", folder / name)
            return name, False
    raise ModelLoadError(
        f"{folder} holds config.json but no PyTorch weights (model.safetensors or pytorch_model.bin); "
        "save the model with save_pretrained"
    )


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """transformers without its progress bars and info lines while dlaudit loads (restored after)."""
    hf_logging = transformers.utils.logging
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _pair(value: Any) -> tuple[int, int] | None:
    """A (height, width) from an image size as configs and processors write it (an int, a pair or a dict)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    if isinstance(value, dict):
        if isinstance(value.get("height"), int) and isinstance(value.get("width"), int):
            return _pair([value["height"], value["width"]])
        return _pair(value.get("shortest_edge"))
    return None


def _image_fields(folder: Path, config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card fields of an image classifier (shape, normalisation), and what the processor is, for the notes."""
    processor = _json(folder / _PROCESSOR) if (folder / _PROCESSOR).is_file() else {}
    size = (
        _pair(getattr(config, "image_size", None))  # a hard constraint of ViT-like models
        or (_pair(processor.get("crop_size")) if processor.get("do_center_crop") else None)
        or _pair(processor.get("size"))
    )
    fields: dict[str, Any] = {"modality": "image", "value_range": [0.0, 1.0]}
    if size is not None:
        fields["input_shape"] = [int(getattr(config, "num_channels", 3) or 3), *size]
    if processor.get("do_normalize", True) and processor.get("image_mean") is not None:
        fields["mean"], fields["std"] = processor.get("image_mean"), processor.get("image_std")
    notes = {"processor": str(processor.get("image_processor_type", "none"))[:80]}
    return fields, notes


def _max_len(tokenizer: Any, config: Any) -> int:
    from ..text.hf_tokenizer import MAX_LENGTH

    limits = [MAX_LENGTH]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 10**6:  # transformers writes 1e30 for "no limit"
        limits.append(model_max)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits)


def _text_fields(folder: Path, transformers: Any, model: nn.Module, config: Any) -> tuple[dict[str, Any], Any, Any]:
    """The card fields, the dlaudit tokenizer and the model wrapper of a text classifier."""
    from ..errors import ConfigError
    from ..text.hf_tokenizer import HFTokenizer

    try:
        hf = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelLoadError(
            f"{folder}: the tokenizer cannot be loaded ({type(err).__name__}: {first_line(err)}); "
            "save it beside the model with tokenizer.save_pretrained"
        ) from err
    if len(hf) <= len(set(getattr(hf, "all_special_ids", ()))):  # transformers builds one from nothing
        raise ModelLoadError(
            f"{folder}: the tokenizer has only its {len(hf)} special tokens (no tokenizer.json or vocabulary file "
            "in the folder?); save the model's tokenizer beside it with tokenizer.save_pretrained"
        )
    try:
        tokenizer = HFTokenizer(hf, max_len=_max_len(hf, config))
    except ConfigError as err:
        raise ModelLoadError(f"{folder}: {err}") from err
    rows = int(model.get_input_embeddings().num_embeddings)
    if not len(tokenizer) <= rows <= math.ceil(len(tokenizer) / EMBEDDING_PADDING) * EMBEDDING_PADDING:
        raise ModelLoadError(
            f"{folder}: the tokenizer has {len(tokenizer):,} tokens but the model's embedding has {rows:,} rows, "
            "so it is not this model's tokenizer; save the tokenizer the model was trained with beside it"
        )
    fields = {
        "modality": "text",
        "input_shape": [tokenizer.max_len],
        "value_range": [0.0, float(len(tokenizer) - 1)],
    }
    return fields, tokenizer, HFTextClassifier(model, tokenizer.pad_id)


def _version() -> str:
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return "?"


def load(file: ModelFile, request: LoadRequest) -> Loaded:
    folder = file.path
    transformers = _transformers()
    config_json = _json(folder / "config.json")
    if not isinstance(config_json.get("model_type"), str):
        raise ModelLoadError(
            f"{folder}: config.json has no model_type, so it is not a Hugging Face model folder; "
            "give a folder written by save_pretrained"
        )
    _no_remote_code(folder)
    task = _task(folder, config_json)
    weights, safe = _weights(folder, request.trust_pickle)
    auto = (
        transformers.AutoModelForImageClassification
        if task == "image"
        else transformers.AutoModelForSequenceClassification
    )
    with _quiet(transformers):
        model, config = _model(folder, transformers, auto, safe)
    if task == "image":
        fields, notes = _image_fields(folder, config)
        module, tokenizer = HFImageClassifier(model), None
    else:
        fields, tokenizer, module = _text_fields(folder, transformers, model, config)
        notes = {"tokenizer": type(tokenizer.hf).__name__}
    labels = getattr(config, "id2label", None) or {}
    if len(labels) == config.num_labels and all(i in labels for i in range(config.num_labels)):
        fields["class_names"] = [str(labels[i]) for i in range(config.num_labels)]
    fields["num_classes"] = int(config.num_labels)
    notes = {
        "class": type(model).__name__,
        "model_type": str(config.model_type),
        "weights": weights,
        **notes,
        "transformers": _version(),
    }
    return Loaded(module.eval(), card_fields=fields, notes={"huggingface": notes}, tokenizer=tokenizer)


def _model(folder: Path, transformers: Any, auto: Any, safe: bool) -> tuple[nn.Module, Any]:
    """The model of the folder, every weight read from it (a head the weights lack is refused, not initialised)."""
    from ..limits import check_model_size

    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        check_model_size(
            lambda: auto.from_config(config),
            f"the Hugging Face model in {folder}",
            "check its config.json",
        )
        model, info = auto.from_pretrained(
            str(folder),
            config=config,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=safe,
            dtype=torch.float32,
            output_loading_info=True,
        )
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, ImportError) as err:
        raise ModelLoadError(
            f"{folder}: transformers cannot load it ({type(err).__name__}: {first_line(err)}); "
            "give a folder written by save_pretrained"
        ) from err
    missing = list(info.get("missing_keys") or []) + [str(k) for k in info.get("mismatched_keys") or []]
    if missing:
        raise ModelLoadError(
            f"{folder}: the weights lack {', '.join(sorted(missing)[:3])}{' ...' if len(missing) > 3 else ''} of "
            f"{type(model).__name__}, which transformers would fill with random numbers; save the trained classifier "
            "with save_pretrained"
        )
    return model.eval(), config


FORMAT = register_format(
    ModelFormat(
        "huggingface",
        detect,
        load,
        order=55,
        description="Hugging Face folder (save_pretrained): image or text classifier, loaded with transformers",
    )
)
