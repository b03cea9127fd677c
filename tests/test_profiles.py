"""The fast and small profiles are defined once, by the settings classes (issue 21)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dlaudit.analysis import get_analysis, list_analyses
from dlaudit.errors import ConfigError
from dlaudit.explain import ExplainSettings
from dlaudit.fairness.mitigate import MitigationSettings
from dlaudit.train import TrainConfig

PACKAGE = Path(__file__).resolve().parents[1] / "dlaudit"
NOT_PROFILES = {
    "FAST_ATTACKS",  # AutoAttack's own "fast" version (version="fast"), an algorithm, not the analysis' profile
    "FAST_STEPS",
    "FAST_TARGETS",
    "FAST_FGSM_STEP",  # Wong et al.'s "fast FGSM" training step
    "FAST_HELP",  # the CLI's wording of --fast
    "_SMALL_WARNED",  # whether the DLAUDIT_SMALL warning was logged
}


def test_no_module_defines_a_fast_or_small_constant() -> None:
    """``FAST``/``SMALL`` profiles live on settings classes only, never as module-level names."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for t in targets:
                if isinstance(t, ast.Name) and ("FAST" in t.id or "SMALL" in t.id) and t.id not in NOT_PROFILES:
                    found.append(f"{path.relative_to(PACKAGE)}: {t.id}")
    assert not found


@pytest.mark.parametrize("name", ["explain", "robustness", "fairness"])
def test_each_analysis_settings_class_owns_its_fast_profile(name: str) -> None:
    analysis = get_analysis(name)
    fast = analysis.fast
    assert fast and set(fast) <= set(analysis.settings_class.__dataclass_fields__)
    assert name in list_analyses()


def test_small_caps_come_from_the_settings_classes() -> None:
    explain = get_analysis("explain")
    assert explain.small_params({}) == {"n": 8}
    assert explain.small_params({"n": 16, "quality": False}) == {"n": 8, "quality": False}
    assert explain.small_params({"n": 3}) == {"n": 3}
    assert get_analysis("fairness").small_params({"n_boot": 7}) == {"n_boot": 7}  # nothing capped there
    assert TrainConfig.small_epochs(None, True) == 2 and TrainConfig.small_epochs(9, True) == 2
    assert TrainConfig.small_epochs(None, False) is None and TrainConfig.small_epochs(1, True) == 1
    s = MitigationSettings.build(small=True, methods="threshold,reweigh", max_iter=20, n_boot=200)
    assert (s.methods, s.epochs, s.max_iter, s.n_boot) == (("threshold", "reweigh"), 2, 3, 50)
    assert MitigationSettings.build(max_iter=20).max_iter == 20
    assert ExplainSettings.fast() == ExplainSettings(**ExplainSettings.FAST) != ExplainSettings()


def test_mitigation_settings_refuse_bad_values() -> None:
    with pytest.raises(ConfigError, match="max_iter"):
        MitigationSettings.build(max_iter=0)
    with pytest.raises(ConfigError, match="mitigation method"):
        MitigationSettings.build(methods="magic")


VIEWS = {
    "attack": "attack",
    "certify": "certify",
    "explain": "explain_model",
    "fairness": "fairness_report",
    "mitigate": "mitigate",
    "train": "train",
}


@pytest.mark.parametrize("name", ["explain", "robustness", "fairness"])
def test_declared_options_reach_a_keyword_or_a_setting(name: str) -> None:
    """Each option an analysis declares is one of its Settings' options and fills a real keyword or setting."""
    import inspect

    import dlaudit

    analysis = get_analysis(name)
    assert analysis.cli_options and analysis.settings_class.OPTIONS == analysis.cli_options
    for o in analysis.cli_options:
        if o.setting is not None:
            assert o.setting in analysis.settings_class.__dataclass_fields__
            continue
        fn = dlaudit.run_report if o.command == "report" else getattr(dlaudit, VIEWS[o.command])
        params = inspect.signature(fn).parameters
        assert o.target in params or any(p.kind is p.VAR_KEYWORD for p in params.values()), (o.flags, fn)


def test_an_option_is_checked_when_declared() -> None:
    from dlaudit import Option

    with pytest.raises(ConfigError, match="type must be"):
        Option("report", ("--x",), "x", type="complex")
    with pytest.raises(ConfigError, match="belongs to the report command"):
        Option("attack", ("--x",), "x", setting="x")


def test_a_broken_option_declaration_is_a_warning_not_a_crash(monkeypatch, caplog) -> None:
    import dataclasses

    from dlaudit import analysis as registry

    broken = dataclasses.replace(get_analysis("fairness"), name="broken", options="dlaudit_no_such_module:OPTIONS")
    monkeypatch.setitem(registry._registry(), "broken", broken)
    with caplog.at_level("WARNING"):
        found = registry.command_options("fairness")
    assert "--n-boot" in {f for _, o in found for f in o.flags}
    assert "the options of analysis 'broken' were not loaded" in caplog.text


def test_train_options_fill_keywords_of_train() -> None:
    import inspect

    import dlaudit
    from dlaudit.analysis import command_options

    params = inspect.signature(dlaudit.train).parameters
    found = command_options("train")
    assert found and all(o.target in params for _, o in found)
