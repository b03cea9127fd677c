"""The explanation figures: one shared scale by default, readable panels, waterfalls that add up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlaudit.errors import ConfigError
from dlaudit.explain import figures
from dlaudit.explain._common import Column, ExplainSettings
from dlaudit.explain.quality import Curves


def _images(k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(k, 1, 8, 8, generator=gen), torch.randn(k, 1, 8, 8, generator=gen)


def test_saliency_maps_share_one_scale_unless_asked_and_say_which() -> None:
    x, a = _images()
    shared = figures.overlay_grid("IG", x, a, ["1", "2", "3"], ["1", "2", "4"], (0.0, 1.0))
    assert "one scale for the whole figure" in shared.caption and "samples compare" in shared.caption
    assert "over its input, transparent where it is near 0" in shared.caption and "outline" not in shared.caption
    per = figures.overlay_grid("IG", x, a, ["1", "2", "3"], ["1", "2", "4"], (0.0, 1.0), scale="sample")
    assert "per-sample scale" in per.caption and per.data != shared.data
    with pytest.raises(ValueError, match="figure scale"):
        figures.overlay_grid("IG", x, a, ["1"] * 3, ["1"] * 3, (0.0, 1.0), scale="bogus")
    with pytest.raises(ConfigError, match="figure_scale"):
        ExplainSettings(figure_scale="bogus")


def test_deletion_curves_keep_a_readable_number_of_lines_per_panel() -> None:
    f = np.linspace(0, 1, 5)
    c = Curves(f, np.tile(1 - f, (2, 1)), np.tile(f, (2, 1)))
    few = figures.curves_figure({"a": c, "b": c}, c, {})
    many = figures.curves_figure({str(i): c for i in range(6)}, c, {})
    assert "per row of panels" not in few.caption
    assert f"at most {figures.CURVES_PER_PANEL} methods per row of panels" in many.caption


def test_waterfall_and_beeswarm_on_tabular_columns() -> None:
    columns = (Column("income", (0,)), Column("age", (1,)), Column("sex", (2, 3), True, ("female", "male")))
    x = torch.tensor([[0.5, 0.25, 1.0, 0.0], [1.0, 0.75, 0.0, 1.0]])
    a = torch.tensor([[0.2, -0.1, 0.05, 0.0], [0.3, 0.1, 0.0, -0.2]])
    assert figures.column_value(columns[0], x[0], {"income": (0.0, 10000.0)}) == "income=5,000"
    assert figures.column_value(columns[1], x[0]) == "age=0.25"
    assert figures.column_value(columns[2], x[1]) == "sex=male"
    fig = figures.waterfall(
        "SHAP", x, a, columns, [0.9, 0.4], ["yes", "no"], ["yes", "yes"], base_label="base value E[f(x)]"
    )
    assert fig.caption.startswith("SHAP waterfall per explained row: from the base value E[f(x)]") and fig.data
    swarm = figures.beeswarm("SHAP", x, a, columns)
    assert "one dot per explained row" in swarm.caption and "2 rows and 3 columns" in swarm.alt
    both = figures.importance_comparison({"Saliency": a, "IG": a * 3}, columns)
    assert "methods with different units compare" in both.caption and "Saliency: most important income" in both.alt
