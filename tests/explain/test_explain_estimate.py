"""The explanation section estimates its time from its counted model passes, and the audit announces it first."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit.analysis import get_analysis
from dlaudit.explain._common import ExplainSettings
from dlaudit.explain.estimate import method_rows, method_runs, passes
from dlaudit.progress import ProgressPrinter


def test_each_methods_rows_follow_its_settings() -> None:
    s = ExplainSettings()
    image = (3, 32, 32)
    assert method_rows("ig", s, image, tabular=False) == (0.0, 64.0)
    assert method_rows("smoothgrad", s, image, tabular=False) == (0.0, 16.0)
    assert method_rows("shap", s, image, tabular=False) == (0.0, 200.0)  # expected gradients
    assert method_rows("lime", s, image, tabular=False) == (1000.0, 0.0)
    assert method_rows("lime", s, (12,), tabular=True) == (5000.0, 0.0)
    assert method_rows("shap", s, (12,), tabular=True) == ((2 * 12 + 2048) * 10.0, 0.0)  # Kernel SHAP, 10 centres
    # occlusion: 5x5 patches (a seventh of 32, rounded up) at stride 2: 14 x 14 windows and the input itself
    assert method_rows("occlusion", s, image, tabular=False) == (14 * 14 + 1.0, 0.0)
    assert method_rows("occlusion", s, (12,), tabular=True) == (13.0, 0.0)


def test_the_trust_metrics_run_each_method_again() -> None:
    full, fast = ExplainSettings(), ExplainSettings.fast()
    # 16 samples, again at 8 cascade stages, 4 samples x 8 perturbations, and a random class
    assert method_runs(full, 16, quality=True, stages=8) == 16 + 16 * 8 + 4 * 8 + 16
    assert method_runs(fast, 8, quality=True, stages=8) == 8 + 8 + 4 * 4 + 8  # no cascade: one randomised model
    assert method_runs(full, 16, quality=False, stages=8) == 16
    forwards, grads = passes(["ig"], full, 16, (3, 32, 32), tabular=False, quality=True, stages=8)
    assert grads == 64 * (16 + 16 * 8 + 4 * 8 + 16)
    curves = 2 * 33  # deletion and insertion at 32 steps and the start
    assert forwards == 16 * curves + 16 * 2 * 32 + 2 * 16 + full.random_orders * 16 * curves  # ROAD, completeness


def test_the_audit_announces_the_explanation_estimate_first(digits_cnn) -> None:
    data = dlaudit.load_data(bundle=digits_cnn)
    explain = get_analysis("explain")
    full = explain.time_estimate(digits_cnn, data, params={})
    fast = explain.time_estimate(digits_cnn, data, fast=True, params={})
    assert full is not None and fast is not None and full[0] > fast[0] > 0
    assert "on 16 samples" in full[1] and "on 8 samples" in fast[1]
    few = explain.time_estimate(digits_cnn, data, fast=True, params={"methods": "saliency,ig", "quality": False})
    assert few is not None and "(saliency, ig on 8 samples)" in few[1] and few[0] < fast[0]
    import dlaudit.pipeline as est

    out = io.StringIO()
    original = est.EXPENSIVE
    est.EXPENSIVE = 0.0  # announce even this small audit
    try:
        dlaudit.audit(
            digits_cnn,
            checks="explain",
            fast=True,
            progress=ProgressPrinter(stream=out, tty=False, interval=1e9),
            params={"explain": {"methods": "saliency", "n": 2}},
        )
    finally:
        est.EXPENSIVE = original
    lines = out.getvalue().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("dlaudit: [explain] estimated "))
    assert lines[at + 1] == "dlaudit: [explain] started" and "(saliency on 2 samples)" in lines[at]


class _SharedReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.relu(self.conv(x))).flatten(1))


def test_deeplift_is_not_priced_where_the_section_skips_it(digits_cnn) -> None:
    from dlaudit.bundle import ModelBundle

    data = dlaudit.load_data(bundle=digits_cnn)
    shared = ModelBundle(_SharedReLU(), digits_cnn.card, device="cpu")
    explain = get_analysis("explain")
    with_reuse = explain.time_estimate(shared, data, fast=True, params={})
    plain = explain.time_estimate(digits_cnn, data, fast=True, params={})
    assert with_reuse is not None and plain is not None
    assert "deeplift" not in with_reuse[1] and "deeplift" in plain[1]


@pytest.mark.parametrize("fast", [True, False])
def test_a_given_settings_profile_is_the_one_priced(digits_cnn, fast: bool) -> None:
    data = dlaudit.load_data(bundle=digits_cnn)
    explain = get_analysis("explain")
    mine = ExplainSettings(ig_steps=8, smoothgrad_samples=2, lime_samples=50, shap_samples=10, sanity_cascade=False)
    given = explain.time_estimate(digits_cnn, data, fast=fast, params={"settings": mine, "methods": "ig"})
    assert given is not None
    forwards, grads = passes(["ig"], mine, 8 if fast else 16, (1, 8, 8), tabular=False, quality=True, stages=1)
    assert f"about {int(forwards):,} forward and {int(grads):,} gradient passes" in given[1]
