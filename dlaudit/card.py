"""ModelCard: what an audit needs to know about a model and cannot guess."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CardError
from .paths import JSON_LIMIT, read_input, shown

if TYPE_CHECKING:
    from .modalities import Modality

__all__ = ["ModelCard", "canonical_fields", "read_card_json"]

MAX_INPUT_ELEMENTS = 50_000_000
"""The most values one input sample may have (a 3x4096x4096 image is 50M): a typo in a card must not allocate gigabytes."""
MAX_CLASSES = 100_000
DISPLAY_NAME = 40
"""Characters of a class name shown in a table or figure."""


def _whole_numbers(values: Any, what: str) -> tuple[int, ...]:
    """Positive whole numbers (``8.7`` and ``"8"`` are refused, never truncated or parsed)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise CardError(f"model card: {what} must be a list of whole numbers, e.g. [1, 28, 28], got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or v < 1:
            raise CardError(f"model card: {what} must be positive whole numbers, got {list(values)!r}")
        out.append(int(v))
    return tuple(out)


def read_card_json(path: str | Path) -> Any:
    """The JSON value in the card file ``path`` (a regular file of at most :data:`~dlaudit.paths.JSON_LIMIT` bytes)."""
    raw = read_input(path, "card file", limit=JSON_LIMIT, error=CardError)
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError as err:
        raise CardError(f"card file {shown(path)} is nested too deeply to be a model card") from err
    except UnicodeDecodeError as err:
        raise CardError(f"card file {shown(path)} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    except ValueError as err:
        raise CardError(f"card file {shown(path)} is not valid JSON: {str(err)[:200]}") from err


def check_encoder(encoder: Any, *, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Refuse a tabular encoder spec (a card's ``encoder``) that could not encode data the way the model was
    trained: a :class:`CardError` that names the card, not the data it would later have failed on."""
    where = "model card: encoder"
    if not isinstance(encoder, dict) or not {"numeric", "categorical", "target", "classes"} <= encoder.keys():
        raise CardError(
            f"{where} must be an object with numeric, categorical, target and classes (as dlaudit train writes it), "
            f"got {_brief(encoder)}; train the model again, or remove the encoder from its card"
        )
    numeric, categorical = encoder["numeric"], encoder["categorical"]
    if not isinstance(numeric, list) or not isinstance(categorical, list):
        raise CardError(
            f"{where}: numeric and categorical must be lists of columns, got {_brief(numeric)}, {_brief(categorical)}"
        )
    names = []
    for i, col in enumerate(numeric):
        ok = isinstance(col, dict) and isinstance(col.get("name"), str)
        ok = ok and all(_finite(col.get(k)) for k in ("min", "max")) and col["max"] > col["min"]
        if not ok:
            raise CardError(
                f'{where}: numeric[{i}] must be {{"name": column, "min": number, "max": larger number}}, '
                f"got {_brief(col)}"
            )
        names.append(col["name"])
    width = len(numeric)
    for i, col in enumerate(categorical):
        cats = col.get("categories") if isinstance(col, dict) else None
        if not (isinstance(col, dict) and isinstance(col.get("name"), str) and isinstance(cats, list)) or not all(
            isinstance(c, str) for c in cats
        ):
            raise CardError(
                f'{where}: categorical[{i}] must be {{"name": column, "categories": [strings]}}, got {_brief(col)}'
            )
        names.append(col["name"])
        width += len(cats)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CardError(f"{where}: column(s) {', '.join(map(repr, repeated))} appear more than once")
    if not isinstance(encoder["target"], str) or encoder["target"] in names:
        raise CardError(f"{where}: target must be the name of the label column, got {_brief(encoder['target'])}")
    classes = encoder["classes"]
    if not isinstance(classes, list) or len(classes) != num_classes:
        raise CardError(f"{where}: classes must list the {num_classes} class labels, got {_brief(classes)}")
    if len(input_shape) == 1 and width != input_shape[0]:
        raise CardError(
            f"{where} encodes {width} features but the model takes {input_shape[0]} (input_shape); "
            "the encoder is not the model's"
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


MAX_CARD_DEPTH = 32
"""How deeply a card's values may nest (lists and objects); dlaudit's own cards nest 5 deep."""

MAX_CARD_ITEMS = 2_000_000
"""How many values a card may hold, counted as every walk of it would count them (a value a pickle refers
to twice counts twice): a class name per class of a large model, with room to spare."""


def check_depth(value: Any, *, source: str = "card", limit: int = MAX_CARD_DEPTH, items: int = MAX_CARD_ITEMS) -> None:
    """Refuse a card nested more than ``limit`` deep or holding more than ``items`` values, found without
    recursion. A checkpoint's card is unpickled, not parsed as JSON, so nothing bounded it before: every later
    walk of it (printing, copying, ``dataclasses.asdict``) failed with a RecursionError, and a pickle's shared
    references can make a small file expand to billions of values (a list that holds one list twice, 30 deep)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > items:
            raise CardError(
                f"{source}: the model card holds more than {items:,} values (counting shared ones each time); "
                "write the card again, or give one with --card"
            )
        if not isinstance(item, (dict, list, tuple)):
            continue
        if depth >= limit:
            raise CardError(
                f"{source}: the model card is nested more than {limit} levels deep; a card holds a few levels "
                "(shapes, names, training settings); write the card again, or give one with --card"
            )
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)


def canonical_fields(data: dict[str, Any], *, source: str = "card") -> dict[str, Any]:
    """Card fields with the short spellings a card file may use replaced: ``"arch"`` is ``"architecture"``."""
    if "arch" not in data:
        return data
    data = dict(data)
    arch = data.pop("arch")
    if data.get("architecture") not in (None, arch):
        raise CardError(f"{source}: arch {arch!r} and architecture {data['architecture']!r} disagree; give one of them")
    data["architecture"] = arch
    return data


@dataclass
class ModelCard:
    """Metadata that travels with a model.

    Parameters
    ----------
    input_shape
        Shape of one input sample, e.g. ``(1, 8, 8)`` or ``(104,)``.
    num_classes
        Number of output logits.
    value_range
        Range of the model's inputs (attacks clip to it), e.g. ``(0.0, 1.0)``.
    architecture, arch_kwargs
        Registry name and keyword arguments of a reference model, or of a known
        architecture a bare state_dict is loaded into (``"torchvision:resnet18"``,
        ``"timm:NAME"``; a card file may call it ``"arch"``); ``None`` for a
        foreign model file that holds its own code (TorchScript, torch.export,
        pickled module).
    modality
        The name of a registered :class:`~dlaudit.modalities.Modality`: ``"image"`` or
        ``"tabular"`` (or a plug-in's); :attr:`kind` is the object itself.
    mean, std
        Normalisation applied *inside* the model (so attacks work in input units):
        one value per channel (images) or feature (tabular), or one for all.
        Reference models build it in; for every other model dlaudit puts
        ``(x - mean) / std`` in front of the module it loads.
    class_names, feature_names
        Names used in reports.
    positive_class
        For a binary model: the name of the class the fairness metrics call positive (selection
        rates, ``P(positive)``, the bias AUCs), e.g. ``"toxic"`` where ``id2label`` is
        ``{0: "toxic", 1: "clean"}``; by default class index 1 (:attr:`positive_index`).
    encoder
        For tabular models: how raw columns become model inputs (see
        :class:`dlaudit.data.tabular.TabularEncoder`), so new data is encoded the
        same way.
    tokenizer
        For text models: the tokenizer as plain data (a dlaudit word vocabulary,
        :meth:`dlaudit.text.vocab.WordVocab.to_dict`); the loaded bundle's ``tokenizer``.
    dataset, data_dir, split, data_seed, target, sensitive
        Where the model's held-out data comes from (``--data`` left out).
    training, seed, metrics
        How it was trained and what it scored at training time.
    postprocess
        Optional post-processing of the logits (e.g. group thresholds from
        fairness mitigation), applied by the loaded bundle.
    """

    input_shape: tuple[int, ...]
    num_classes: int
    value_range: tuple[float, float] = (0.0, 1.0)
    architecture: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    modality: str = "image"
    task: str = "classification"
    mean: list[float] | None = None
    std: list[float] | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    positive_class: str | None = None
    encoder: dict[str, Any] | None = None
    tokenizer: dict[str, Any] | None = None
    dataset: str | None = None
    data_dir: str | None = None
    split: str = "test"
    data_seed: int = 0
    target: str | None = None
    sensitive: list[str] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    postprocess: dict[str, Any] | None = None
    dlaudit_version: str | None = None

    def __post_init__(self) -> None:
        self.input_shape = _whole_numbers(self.input_shape, "input_shape")
        if not isinstance(self.value_range, (list, tuple)) or len(self.value_range) != 2:
            raise CardError(
                f"model card: value_range must be two numbers [low, high], e.g. [0, 1], got {self.value_range!r}"
            )
        try:
            self.value_range = (float(self.value_range[0]), float(self.value_range[1]))
        except (TypeError, ValueError):
            raise CardError(
                f"model card: value_range must be two numbers [low, high], got {self.value_range!r}"
            ) from None
        if not all(math.isfinite(v) for v in self.value_range):
            raise CardError(f"model card: value_range must be finite, got {list(self.value_range)}")
        (self.num_classes,) = _whole_numbers([self.num_classes], "num_classes")
        if self.num_classes > MAX_CLASSES:
            raise CardError(
                f"model card: num_classes {self.num_classes:,} is more than dlaudit audits ({MAX_CLASSES:,})"
            )
        if math.prod(self.input_shape) > MAX_INPUT_ELEMENTS:
            raise CardError(
                f"model card: input_shape {list(self.input_shape)} is {math.prod(self.input_shape):,} values per sample, "
                f"more than dlaudit audits ({MAX_INPUT_ELEMENTS:,}); check the card"
            )
        if self.postprocess is not None and not isinstance(self.postprocess, dict):
            raise CardError(
                f'model card: postprocess must be an object such as {{"kind": ...}} or null, got {self.postprocess!r}'
            )
        for key in ("arch_kwargs", "training", "metrics"):
            if not isinstance(getattr(self, key), dict):
                raise CardError(f"model card: {key} must be an object, got {getattr(self, key)!r}")
        if self.num_classes < 2:
            raise CardError(f"model card: num_classes must be at least 2, got {self.num_classes}")
        if not self.input_shape or any(s < 1 for s in self.input_shape):
            raise CardError(f"model card: input_shape must be positive sizes, got {self.input_shape}")
        if not self.value_range[0] < self.value_range[1]:
            raise CardError(f"model card: value_range must be (low, high) with low < high, got {self.value_range}")
        from .modalities import list_modalities

        if self.modality not in list_modalities():
            raise CardError(f"model card: modality must be one of {tuple(list_modalities())}, got {self.modality!r}")
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
            if len(self.class_names) != self.num_classes:
                raise CardError(
                    f"model card: {len(self.class_names)} class_names for {self.num_classes} classes; "
                    "give one name per output"
                )
        self._check_positive_class()
        self._check_normalisation()
        if self.tokenizer is not None and not isinstance(self.tokenizer, dict):
            raise CardError(
                f"model card: tokenizer must be an object (a saved vocabulary) or null, got {_brief(self.tokenizer)}"
            )
        if self.encoder is not None:
            check_encoder(self.encoder, input_shape=self.input_shape, num_classes=self.num_classes)
        if self.dlaudit_version is None:
            from ._version import __version__

            self.dlaudit_version = __version__

    def _check_positive_class(self) -> None:
        if self.positive_class is None:
            return
        if self.num_classes != 2:
            raise CardError(
                f"model card: positive_class applies to a binary model; this one has {self.num_classes} classes "
                "(leave positive_class out)"
            )
        self.positive_class = str(self.positive_class)
        if self.positive_class not in self.names:
            raise CardError(
                f"model card: positive_class {self.positive_class!r} is not one of the class names {self.names}; "
                "name one of them (--positive-class)"
            )

    @property
    def positive_index(self) -> int | None:
        """The index of the positive class of a binary model (``positive_class``, else 1); None for more classes."""
        if self.num_classes != 2:
            return None
        return self.names.index(self.positive_class) if self.positive_class is not None else 1

    def _check_normalisation(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise CardError(
                "model card: give both mean and std (the normalisation (x - mean) / std), or neither; "
                f"got mean={self.mean!r}, std={self.std!r}"
            )
        if self.mean is None:
            return
        channels = self.input_shape[0]
        for key in ("mean", "std"):
            values = getattr(self, key)
            if isinstance(values, (int, float)) and not isinstance(values, bool):
                values = [values]
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
                raise CardError(f"model card: {key} must be a list of numbers, e.g. [0.5, 0.5, 0.5], got {values!r}")
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
                raise CardError(f"model card: {key} must be finite numbers, got {list(values)!r}")
            if len(values) not in (1, channels):
                what = "channel" if len(self.input_shape) > 1 else "feature"
                raise CardError(
                    f"model card: {key} has {len(values)} value(s) but the input has {channels} {what}(s) "
                    f"(input_shape {list(self.input_shape)}); give one value per {what}, or one for all"
                )
            setattr(self, key, [float(v) for v in values])
        if any(v <= 0 for v in self.std):
            raise CardError(f"model card: std must be positive (it divides the input), got {self.std}")

    @property
    def normalisation(self) -> str:
        """In words: which normalisation the model's inputs go through."""
        if self.mean is None:
            return f"none on the card: the model receives inputs in value_range {list(self.value_range)} as they are"
        return f"(x - mean) / std inside the model, mean {self.mean}, std {self.std}; inputs in value_range {list(self.value_range)}"

    @property
    def kind(self) -> Modality:
        """The registered :class:`~dlaudit.modalities.Modality` named by ``modality``, which analyses query."""
        from .modalities import get_modality

        return get_modality(self.modality)

    @property
    def names(self) -> list[str]:
        """Class names, defaulting to ``"0"``, ``"1"``, ..."""
        return self.class_names or [str(i) for i in range(self.num_classes)]

    @property
    def display_names(self) -> list[str]:
        """Class names for tables and figures: at most :data:`DISPLAY_NAME` characters (full ones stay in the card)."""
        return [n if len(n) <= DISPLAY_NAME else n[: DISPLAY_NAME - 1] + "…" for n in self.names]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only, so checkpoints load with ``weights_only=True``."""
        out = dataclasses.asdict(self)
        out["input_shape"] = list(self.input_shape)
        out["value_range"] = list(self.value_range)
        return json.loads(json.dumps(out))  # normalises tuples and numpy scalars away

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "card") -> ModelCard:
        if not isinstance(data, dict):
            raise CardError(f"{source}: a model card must be a JSON object, got {type(data).__name__}")
        check_depth(data, source=source)
        known = {f.name for f in dataclasses.fields(cls)}
        data = canonical_fields(data, source=source)
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardError(
                f"{source}: unknown card field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(known))}"
            )
        missing = [k for k in ("input_shape", "num_classes") if data.get(k) is None]
        if missing:
            raise CardError(
                f"{source}: the model card is missing {' and '.join(missing)}; "
                'give them in a sidecar <model>.card.json, e.g. {"input_shape": [1, 28, 28], "num_classes": 10}'
            )
        try:
            return cls(**data)
        except CardError as err:  # the card's own check: say whose card it is
            raise CardError(f"{source}: {err}" if source != "card" else str(err)) from err
        except (TypeError, ValueError) as err:
            raise CardError(f"{source}: invalid model card: {err}") from err

    @classmethod
    def from_json(cls, path: str | Path) -> ModelCard:
        return cls.from_dict(read_card_json(path), source=shown(path))

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)
