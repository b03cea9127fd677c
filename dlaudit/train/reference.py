"""``dlaudit train``: a reference model trained on a dataset's training split (the glue around :func:`.trainer.train`).

Importing this module is cheap (no torch): :func:`train` imports what it needs when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..bundle import ModelBundle
    from ..utils import ProgressFn

__all__ = ["train"]


def train(
    arch: str,
    data: str | Path = "digits",
    *,
    data_dir: str | Path | None = None,
    target: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    weight_decay: float = 0.0,
    hidden: str | Sequence[int] | None = None,
    seed: int = 0,
    device: str = "auto",
    sample_weight: Any = None,
    progress: ProgressFn | None = None,
    adversarial: str | None = None,
    eps: float | None = None,
    alpha: float | None = None,
    steps: int | None = None,
    beta: float | None = None,
    warmup: float | None = None,
    lr_schedule: str | None = None,
    certified: str | None = None,
    noise_sigma: float | None = None,
    keep_dropout: bool = False,
    compile: bool = False,
    text_column: str | None = None,
) -> ModelBundle:
    """Train a reference model (``cnn``, ``mlp``, ``numpy-mlp``; for text ``textcnn``, ``embedding-bag``) on a dataset's training split.

    Returns the bundle; its card records the dataset, the held-out split, the
    training configuration and the held-out accuracy.

    ``adversarial`` trains on adversarial examples: ``"pgd"`` (Madry et al. 2018,
    arXiv:1706.06083), ``"fgsm"`` (fast FGSM with random start, Wong et al. 2020,
    arXiv:2001.03994) or ``"trades"`` (Zhang et al. 2019, arXiv:1901.08573), with
    budget ``eps``, step size ``alpha``, ``steps`` attack steps and TRADES' ``beta``
    (see :class:`dlaudit.robust.training.AdversarialTraining`); its budget ramps up over
    the first ``warmup`` share of the epochs (default 0.3) and the learning rate follows a
    cosine schedule (``lr_schedule``: ``constant`` or ``cosine``; cosine is the default for
    adversarial and certified training). Every epoch ends with a collapse check recorded on
    the card (``training.monitor``). ``certified="ibp"`` trains with interval bounds
    (Gowal et al. 2018, arXiv:1810.12715; 30 epochs by default) at budget ``eps``;
    ``noise_sigma`` trains on Gaussian-noise augmented inputs (Cohen et al. 2019,
    arXiv:1902.02918), for randomized smoothing. ``keep_dropout`` (cnn) keeps the dropout on
    in eval mode, a model random at inference (Monte Carlo dropout). ``hidden`` is a list of layer sizes or
    a string such as ``"128,64"``. ``compile`` runs the attack's gradient steps through
    ``torch.compile`` (see :mod:`dlaudit.robust.attacks.speed`). Under ``DLAUDIT_SMALL=1``
    the epochs are capped by :attr:`dlaudit.train.TrainConfig.SMALL`.
    """
    from .._alloc import tune_malloc
    from ..data import load_splits
    from ..parsing import parse_numbers
    from ..pipeline import engine, small
    from ..robust.training import training_setup
    from .trainer import TrainConfig
    from .trainer import train as _train

    tune_malloc()
    epochs = TrainConfig.small_epochs(epochs, small())
    from ..data.text import is_text_spec
    from .text import TEXT_ARCHS

    if arch in TEXT_ARCHS or is_text_spec(data, text_column):
        return _train_text(arch, data, text_column=text_column, target=target, sensitive=sensitive, epochs=epochs,
                           lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed, device=device,
                           progress=progress, ignored={"--adversarial": adversarial, "--certified": certified,
                           "--noise-sigma": noise_sigma, "--hidden": hidden, "--optimizer": optimizer,
                           "--keep-dropout": keep_dropout or None})  # fmt: skip
    if isinstance(hidden, str):
        hidden = [int(h) for h in parse_numbers(hidden, "--hidden", minimum=1, integer=True)]
    splits = load_splits(data, data_dir=data_dir, target=target, sensitive=sensitive, seed=0)
    loss_fn, training_info = training_setup(
        adversarial, eps=eps, alpha=alpha, steps=steps, beta=beta, value_range=splits.train.value_range, seed=seed,
        warmup=warmup, certified=certified, noise_sigma=noise_sigma,
    )  # fmt: skip
    if training_info is not None and "epochs" in training_info:
        default_epochs = training_info.pop("epochs")
        epochs = epochs if epochs is not None else default_epochs
    is_file = Path(str(data)).suffix.lower() in (".npz", ".csv")
    with engine(compile):
        return _train(
            arch,
            splits,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            weight_decay=weight_decay,
            hidden=tuple(hidden) if hidden else None,
            seed=seed,
            device=device,
            sample_weight=sample_weight,
            loss_fn=loss_fn,
            training_info=training_info,
            dataset=str(Path(data).resolve()) if is_file else str(data),
            data_dir=str(Path(data_dir).resolve()) if data_dir else None,
            progress=progress,
            lr_schedule=lr_schedule,
            keep_dropout=keep_dropout,
        )


def _train_text(
    arch: str,
    data: str | Path,
    *,
    text_column: str | None,
    target: str | None,
    sensitive: str | Sequence[str] | None,
    ignored: dict[str, Any],
    **kwargs: Any,
) -> ModelBundle:
    """:func:`train` of a text model on text data (``synthetic-text``, a ``.csv``/``.jsonl`` file with ``text_column``)."""
    from ..data.text import is_text_spec, load_text_splits
    from ..errors import ConfigError
    from ..parsing import split_list
    from .text import TEXT_ARCHS, train_text

    if arch not in TEXT_ARCHS:
        raise ConfigError(f"{data!s} is text data; train a text model on it ({', '.join(TEXT_ARCHS)}), not {arch}")
    if not is_text_spec(data, text_column if text_column is not None else "text"):
        raise ConfigError(
            f"{arch} reads text; train it on synthetic-text or a .csv/.jsonl file with --text-column COL --target COL"
        )
    given = [k for k, v in ignored.items() if v not in (None, "none", ())]
    if given:
        raise ConfigError(f"{', '.join(given)} do(es) not apply to text models; leave them out for {arch}")
    sens = split_list(sensitive) if sensitive is not None else None
    splits = load_text_splits(data, text_column=text_column, target=target, sensitive=sens, seed=0)
    is_file = Path(str(data)).suffix.lower() in (".csv", ".jsonl", ".gz")
    names = list(splits.train.sensitive.columns) if splits.train.sensitive is not None else None
    return train_text(
        arch, splits, dataset=str(Path(data).resolve()) if is_file else str(data), sensitive=names, **kwargs
    )
