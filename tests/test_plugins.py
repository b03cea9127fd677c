"""Plug-ins from other packages through entry points (dlaudit.plugins), without changing a file of dlaudit.

The end-to-end tests install a tiny plug-in package the way pip leaves one: a module and a
``*.dist-info`` folder with ``entry_points.txt``, in a temporary folder put on PYTHONPATH,
then run ``dlaudit attack --attack NAME`` and ``dlaudit report --checks NAME`` in a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import dlaudit
from dlaudit import plugins

ROOT = Path(__file__).resolve().parents[1]

TOY_MODULE = '''
"""A plug-in package for dlaudit: one attack and one analysis."""

from dataclasses import dataclass
from typing import ClassVar

import torch

import dlaudit
from dlaudit.report import Section
from dlaudit.robust.attacks import AttackMethod


@dataclass(frozen=True)
class Darken(AttackMethod):
    """Moves every feature down by the budget, clipped to the value range (gradient-free)."""

    key: ClassVar[str] = "darken"
    norms: ClassVar[tuple[str, ...]] = ("linf",)
    gradient_free: ClassVar[bool] = True

    def perturb(self, module, x, y, eps, *, index, seed, value_range, num_classes):
        adv = (x - eps.view(-1, *[1] * (x.dim() - 1))).clamp(*value_range)
        with torch.no_grad():
            pred = module(adv).argmax(dim=1)
        return adv, pred, pred != y


@dataclass(frozen=True)
class Settings:
    scale: float = 1.0
    FAST: ClassVar[dict] = {}

    @classmethod
    def build(cls, bundle=None, *, fast=False, **params):
        s = cls(**{k: v for k, v in params.items() if v is not None})
        if not s.scale > 0:
            raise dlaudit.ConfigError(f"--parameters-scale must be a number > 0, got {s.scale:g}")
        return s


def parameters(bundle, data, *, seed=0, fast=False, progress=None, scale=1.0):
    sec = Section(name="parameters", title="Parameters")
    count = float(sum(p.numel() for p in bundle.module.parameters()))
    sec.add_metric("parameters.count", count)
    sec.add_metric("parameters.scaled", count * Settings.build(scale=scale).scale)
    sec.summary = "counted"
    return sec


OPTION = dlaudit.Option(
    "report", ("--parameters-scale",), "parameters_scale", "Multiply the parameter count by this.", type="float",
    setting="scale",
)
dlaudit.register_analysis(
    "parameters", parameters, title="Parameters", order=90, default=False, settings=Settings, options=(OPTION,)
)
'''


def _dist(folder: Path, name: str, entry_points: str) -> None:
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, digits_mlp: dlaudit.ModelBundle) -> Path:
    """A folder holding the toy plug-in (installed), a broken one, and a model to audit."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "dlaudit_toy.py").write_text(TOY_MODULE)
    _dist(
        folder,
        "dlaudit_toy",
        """
        [dlaudit.attacks]
        darken = dlaudit_toy:Darken

        [dlaudit.analyses]
        parameters = dlaudit_toy
        """,
    )
    dlaudit.save_model(digits_mlp, folder / "mlp.pt")
    return folder


def _run(site: Path, *args: str, broken: bool = False) -> subprocess.CompletedProcess[str]:
    path = [str(site), str(ROOT)]
    if broken:
        path.insert(0, str(site / "broken"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dlaudit", *args], cwd=site, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def broken_site(site: Path) -> Path:
    """A second folder with a plug-in whose module does not exist, and one whose import raises."""
    folder = site / "broken"
    folder.mkdir()
    (folder / "dlaudit_bad.py").write_text("raise RuntimeError('the plug-in is broken\\nsecond line')\n")
    _dist(
        folder,
        "dlaudit_broken",
        """
        [dlaudit.attacks]
        gone = dlaudit_no_such_module:Attack

        [dlaudit.analyses]
        bad = dlaudit_bad
        """,
    )
    return folder


def test_attack_from_a_plugin_runs_on_the_command_line(site: Path) -> None:
    out = _run(site, "attack", "mlp.pt", "--attack", "darken,fgsm", "--eps", "0.1", "--n", "60", "--json", "a.json")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((site / "a.json").read_text())["metrics"]
    assert {"robustness.darken_linf.acc@0.1", "robustness.fgsm_linf.acc@0.1", "robustness.worst_linf.acc@0.1"} <= set(
        metrics
    )
    assert "plug-in" not in out.stderr


def test_analysis_from_a_plugin_runs_in_a_report(site: Path) -> None:
    out = _run(site, "report", "mlp.pt", "--checks", "performance,parameters", "-o", "r.html", "--json", "r.json",
               "--parameters-scale", "2.5")  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads((site / "r.json").read_text())
    count = float(sum(p.numel() for p in dlaudit.load_model(site / "mlp.pt").module.parameters()))
    assert report["metrics"]["parameters.count"] == count
    assert report["metrics"]["parameters.scaled"] == 2.5 * count  # the plug-in's own option reached its settings
    assert [s["name"] for s in report["sections"]] == ["performance", "parameters"]


def test_a_plugin_analysis_gets_its_declared_option_on_the_command_line(site: Path) -> None:
    shown = _run(site, "report", "--help")
    assert shown.returncode == 0 and "--parameters-scale" in shown.stdout
    assert "Multiply the parameter count by this." in " ".join(shown.stdout.split())
    bad = _run(site, "report", "mlp.pt", "--checks", "parameters", "-o", "r2.html", "--parameters-scale", "-1")
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == "dlaudit: error: --parameters-scale must be a number > 0, got -1"
    assert not (site / "r2.html").exists()


def test_the_report_section_runs_a_plugin_attack(site: Path) -> None:
    config = site / "robust.toml"
    config.write_text("[tool.dlaudit]\n")
    code = (
        "import dlaudit\n"
        "sec = dlaudit.robustness('mlp.pt', attacks='darken_linf', fast=True, n=40, eps=[0, 0.1], noise=[], "
        "min_eps_samples=0, examples=0, masking=False, autoattack='off', certify='off', smoothing=False)\n"
        "print(sorted(m.name for m in sec.metrics if 'darken' in m.name))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=site, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['robustness.darken_linf.acc@0', 'robustness.darken_linf.acc@0.1']"


def test_a_broken_plugin_is_one_warning_line_and_the_command_still_works(site: Path, broken_site: Path) -> None:
    out = _run(site, "attack", "mlp.pt", "--attack", "darken", "--eps", "0.1", "--n", "30", broken=True)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("dlaudit: [")]
    assert len(lines) == 2, out.stderr  # one per broken plug-in (the attack one and the analysis one)
    gone = next(line for line in lines if "gone" in line)
    assert "plug-in gone (dlaudit.attacks = dlaudit_no_such_module:Attack) was not loaded: ModuleNotFoundError" in gone
    bad = next(line for line in lines if "bad" in line)
    assert bad.endswith("was not loaded: RuntimeError: the plug-in is broken")
    assert "darken_linf" in out.stdout


# -- the loader itself ----------------------------------------------------------------------


@pytest.fixture()
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what was loaded before, and again after."""
    plugins._reset()
    yield
    plugins._reset()


def _entry_points(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    monkeypatch.setattr(plugins, "_entry_points", lambda group: [ep for ep in eps if ep.group == group])


def test_load_plugins_takes_modules_functions_and_objects(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    module = types.ModuleType("dlaudit_fake_plugin")
    module.register = lambda: calls.append("function")  # type: ignore[attr-defined]
    module.THING = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dlaudit_fake_plugin", module)
    group = "dlaudit.explainers"
    _entry_points(
        monkeypatch,
        EntryPoint("a-module", "dlaudit_fake_plugin", group),
        EntryPoint("b-function", "dlaudit_fake_plugin:register", group),
        EntryPoint("c-object", "dlaudit_fake_plugin:THING", group),
        EntryPoint("d-missing", "dlaudit_fake_plugin:nothing", group),
    )
    taken: list[str] = []
    with caplog.at_level(logging.WARNING, logger="dlaudit.plugins"):
        loaded = plugins.load_plugins(group, lambda name, obj: obj is module.THING and not taken.append(name))
    assert loaded == ["a-module", "b-function", "c-object"]
    assert calls == ["function"] and taken == ["c-object"]
    assert [r.getMessage() for r in caplog.records] == [
        "plug-in d-missing (dlaudit.explainers = dlaudit_fake_plugin:nothing) was not loaded: "
        "AttributeError: module 'dlaudit_fake_plugin' has no attribute 'nothing'"
    ]
    assert plugins.loaded_plugins(group) == loaded and list(plugins.failed_plugins(group)) == ["d-missing"]
    assert plugins.load_plugins(group) == []  # once per process


def test_an_object_no_registry_takes_is_a_warning(fresh: None, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    module = types.ModuleType("dlaudit_fake_plugin2")
    module.VALUE = 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dlaudit_fake_plugin2", module)
    _entry_points(monkeypatch, EntryPoint("three", "dlaudit_fake_plugin2:VALUE", "dlaudit.formats"))
    with caplog.at_level(logging.WARNING, logger="dlaudit.plugins"):
        assert plugins.load_plugins("dlaudit.formats") == []
    assert "neither a module, a registration function nor an object this registry takes" in caplog.text


def test_an_unknown_group_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown plug-in group 'dlaudit.widgets'; choose from: dlaudit.attacks"):
        plugins.load_plugins("dlaudit.widgets")


def test_every_registry_loads_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consulting each registry loads its entry-point group (and only its own)."""
    from dlaudit import analysis, modalities
    from dlaudit.explain import methods
    from dlaudit.robust.attacks import list_attacks

    asked: list[str] = []
    monkeypatch.setattr(plugins, "load_plugins", lambda group, registrar=None: asked.append(group) or [])
    monkeypatch.setattr(analysis, "_BUILTINS_LOADED", False)
    monkeypatch.setattr(methods, "_PLUGINS_LOADED", False)
    monkeypatch.setattr(modalities, "_PLUGINS_LOADED", False)
    analysis.list_analyses()
    methods.list_methods()
    modalities.list_modalities()
    list_attacks()
    assert asked == ["dlaudit.analyses", "dlaudit.explainers", "dlaudit.modalities", "dlaudit.attacks"]
