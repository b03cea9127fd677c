"""``dlaudit mitigate``: load the model and both splits, fit each mitigation, measure every model, save them.

The glue around :func:`dlaudit.fairness.mitigate.mitigate_bundle` (the algorithms and the before/after
section live there, the settings in :class:`~dlaudit.fairness.mitigate.MitigationSettings`). The result's
:meth:`~dlaudit.fairness.mitigate.MitigationResult.report` is a :class:`~dlaudit.report.model.Report` like
every other command's, with the same provenance keys.

Importing this module is cheap (no torch): :func:`mitigate` imports what it needs when called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .fairness.mitigate import MitigationResult
    from .utils import ProgressFn

__all__ = ["mitigate"]


def mitigate(
    model: ModelBundle | str | Path,
    data: str | Path | None = None,
    *,
    sensitive: str,
    method: str | Sequence[str] = "reweigh",
    constraint: str = "demographic_parity",
    output: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    epochs: int | None = None,
    max_iter: int = 20,
    eps: float = 0.01,
    bins: Mapping[str, Sequence[float]] | Sequence[str] | None = None,
    n_boot: int = 200,
    data_dir: str | Path | None = None,
    target: str | None = None,
    trust_pickle: bool = False,
    progress: ProgressFn | None = None,
    command: str | None = None,
) -> MitigationResult:
    """Mitigate a model's unfairness over one sensitive feature, and measure before and after.

    Parameters
    ----------
    model
        A model file or a :class:`ModelBundle`.
    data
        A dataset name or file (default: the one on the model's card). Its
        training split fits the method; its held-out split measures every model.
    sensitive
        The sensitive column, e.g. ``"sex"``.
    method
        ``reweigh`` (retrain with Kamiran-Calders weights), ``threshold``
        (fairlearn ThresholdOptimizer; the column must be a model input) or
        ``expgrad`` (fairlearn ExponentiatedGradient, saved as an ensemble); a
        list or comma-separated string runs several.
    constraint
        ``demographic_parity`` or ``equalized_odds`` (threshold, expgrad).
    output
        Where to save the mitigated model (``<stem>-<method>.pt`` for each of
        several methods); it loads back with :func:`dlaudit.load_model`.
    epochs, max_iter, eps, n_boot
        See :class:`dlaudit.fairness.mitigate.MitigationSettings` (which caps them under ``DLAUDIT_SMALL=1``).

    Returns
    -------
    dlaudit.fairness.mitigate.MitigationResult
        ``models`` (bundles by method), ``rows``, ``table()``, ``section()``, ``report()`` (the
        :class:`Report` every command writes: flat metrics, sections, findings, provenance).
    """
    import time

    from ._alloc import tune_malloc
    from .bundle import save_model
    from .data import AuditData, for_card
    from .fairness.mitigate import MitigationSettings, mitigate_bundle
    from .parsing import parse_bins, split_list
    from .paths import method_outputs
    from .pipeline import provenance, resolve_model, small

    tune_malloc()
    started = time.time()
    clock = time.perf_counter()
    s = MitigationSettings.build(
        small=small(),
        methods=tuple(split_list(method)) if isinstance(method, str) else tuple(method),
        constraint=constraint,
        epochs=epochs,
        max_iter=max_iter,
        eps=eps,
        n_boot=n_boot,
    )
    bundle = resolve_model(model, device=device, trust_pickle=trust_pickle)
    if not bundle.card.kind.continuous:
        raise ConfigError(
            "mitigation (reweigh, threshold, expgrad) does not support text models yet; "
            "audit a text model's fairness with 'dlaudit fairness' or 'dlaudit report'"
        )
    if isinstance(data, AuditData):
        raise ConfigError(
            "mitigation needs the model's training split as well as held-out data; pass a dataset name or file, not AuditData"
        )
    splits = for_card(
        bundle.card, data, split="both", data_dir=data_dir, target=target, sensitive=split_list(sensitive)
    )
    result = mitigate_bundle(
        bundle,
        splits,
        sensitive=sensitive,
        methods=s.methods,
        constraint=s.constraint,
        seed=seed,
        epochs=s.epochs,
        max_iter=s.max_iter,
        eps=s.eps,
        bins=parse_bins(bins),
        n_boot=s.n_boot,
        progress=progress,
    )
    if output is not None:
        for name, path in method_outputs(str(output), list(result.models)).items():
            save_model(result.models[name], path)
            result.saved[name] = path
    result.provenance = provenance(
        bundle,
        splits.test,
        started=started,
        seconds=time.perf_counter() - clock,
        seed=seed,
        device=str(bundle.device),
        command=command,
        mitigation={
            "feature": sensitive,
            "methods": list(result.models),
            "constraint": s.constraint,
            "fitted on": f"{len(splits.train)} samples of the training split",
            "saved": dict(result.saved),
        },
    )
    return result
