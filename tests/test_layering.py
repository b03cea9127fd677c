"""The layering rules of DESIGN.md, read from the source (every import, also inside functions).

Data flows one way: load -> analyses -> Report -> renderers; the CLI is a thin layer over
the names ``dlaudit`` exports; no import circles between modules of different folders, and
none inside ``report/`` (the Report is plain data that imports nothing of its renderers);
analyses never import a renderer; only the section builders make Sections.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dlaudit"
ANALYSIS_PACKAGES = ("dlaudit.explain", "dlaudit.robust", "dlaudit.fairness", "dlaudit.performance")
ALGORITHM_PACKAGES = ("dlaudit.explain", "dlaudit.robust", "dlaudit.fairness", "dlaudit.text")
SECTION_BUILDERS = frozenset(
    {
        "dlaudit.explain.section",  # the explanations section
        "dlaudit.explain.explanation",  # explain(): attributions and their section
        "dlaudit.fairness.analysis",  # the fairness section
        "dlaudit.fairness.mitigate",  # the mitigation section and report
        "dlaudit.robust.analysis",  # the robustness section
        "dlaudit.robust.certified",  # the certification part of the robustness section
        "dlaudit.robust.natural",  # the common-corruptions part of the robustness section
        "dlaudit.robust.trust",  # the robustness section's checks of its own numbers
        "dlaudit.explain.text_section",  # the explanations section of text models (TextModality.section_builder)
        "dlaudit.robust.text_section",  # the robustness section of text models
        "dlaudit.fairness.text_section",  # the fairness section of text models
    }
)
"""The only modules of the algorithm packages that make Sections (or Reports); the rest take
tensors and return tensors or plain results."""
RENDERERS = (
    "dlaudit.cli",
    "dlaudit.report.html",
    "dlaudit.report.io",
    "dlaudit.report.json",
    "dlaudit.report.junit",
    "dlaudit.report.markdown",
    "dlaudit.report.plots",
    "dlaudit.report.render",
    "dlaudit.report.terminal",
)
"""Modules (and packages) that turn a Report into output; ``report/plots.py`` draws the comparison page."""
NO_CIRCLE_INSIDE = {"dlaudit", "dlaudit.report"}
"""Folders whose modules import one another in one direction only (the top level: api, demo, bundle...;
and report/: plain data, then gates/summary/baseline, then renderers, then io)."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The dlaudit modules ``name`` imports (type-checking-only imports excluded)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t.startswith("dlaudit") and t != name:
                found.add(t)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _folder(name: str) -> str:
    if MODULES[name].name == "__init__.py":
        return name
    return name.rpartition(".")[0]


def _is_analysis(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in ANALYSIS_PACKAGES)


def test_report_modules_import_no_analysis() -> None:
    bad = {m: sorted(t for t in GRAPH[m] if _is_analysis(t)) for m in MODULES if m.startswith("dlaudit.report")}
    assert not {m: t for m, t in bad.items() if t}


def test_no_analysis_imports_api_or_cli() -> None:
    bad = {m: sorted(GRAPH[m] & {"dlaudit.api", "dlaudit.cli", "dlaudit"}) for m in MODULES if _is_analysis(m)}
    assert not {m: t for m, t in bad.items() if t}


def _public_names() -> set[str]:
    """``dlaudit.__all__``, read from the source."""
    tree = ast.parse(MODULES["dlaudit"].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("dlaudit/__init__.py has no __all__")


def test_cli_uses_only_what_dlaudit_exports() -> None:
    assert GRAPH["dlaudit.cli"] == {"dlaudit"}
    tree = ast.parse(MODULES["dlaudit.cli"].read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m.startswith("dlaudit")} == {"dlaudit"}  # no `import dlaudit.api`
    from_dlaudit = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.level or n.module == "dlaudit")]
    assert not from_dlaudit, "import dlaudit and use dlaudit.NAME, so every use reads as the public API"
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "dlaudit"
    }
    assert used - _public_names() == set(), "the CLI uses a name dlaudit does not export (add it to __all__)"
    third_party = {a.split(".")[0] for a in imported}
    third_party |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level
    }
    assert third_party - set(sys.stdlib_module_names) == {"click", "dlaudit"}


def test_every_public_name_exists() -> None:
    import dlaudit

    assert [n for n in _public_names() if not hasattr(dlaudit, n)] == []


def _closure(name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in GRAPH[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _renderer(name: str) -> bool:
    return any(name == r or name.startswith(r + ".") for r in RENDERERS)


def test_analyses_never_import_a_renderer() -> None:
    analyses = [m for m in MODULES if _is_analysis(m) or m == "dlaudit.analyses"]
    bad = {m: sorted(t for t in _closure(m) if _renderer(t)) for m in analyses}
    assert not {m: t for m, t in bad.items() if t}


def test_report_data_and_figure_helpers_import_nothing_of_dlaudit() -> None:
    assert GRAPH["dlaudit.report.model"] == set()
    assert GRAPH["dlaudit.report.figures"] == set()


def _makes_sections(name: str) -> list[str]:
    """Where ``name`` imports Section/Report at run time or calls them (``Section(...)``, ``Section.skipped``)."""
    tree = ast.parse(MODULES[name].read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").rpartition(".")[2] in ("report", "model"):
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names if a.name in ("Section", "Report")]
        if isinstance(node, ast.Call):
            callee = ast.unparse(node.func)
            if {"Section", "Report"} & set(callee.split(".")):
                found.append(f"line {node.lineno}: calls {callee}")
    return found


def test_only_section_builders_make_sections() -> None:
    assert SECTION_BUILDERS <= set(MODULES), "a section builder listed here no longer exists"
    algorithms = [m for m in MODULES if m.startswith(ALGORITHM_PACKAGES) and m not in SECTION_BUILDERS]
    bad = {m: _makes_sections(m) for m in algorithms}
    assert not {m: f for m, f in bad.items() if f}


def test_the_section_check_sees_lazy_and_qualified_uses(tmp_path: Path) -> None:
    fake = tmp_path / "fake.py"
    fake.write_text(
        "def f():\n    from ..report.model import Section\n    return model.Section.skipped('a', 'b', 'c')\n"
    )
    MODULES["dlaudit._fake_algorithm"] = fake
    try:
        assert _makes_sections("dlaudit._fake_algorithm") == [
            "line 2: imports Section",
            "line 3: calls model.Section.skipped",
        ]
    finally:
        del MODULES["dlaudit._fake_algorithm"]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles the rules forbid: across folders, or inside a folder of :data:`NO_CIRCLE_INSIDE`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            folders = {_folder(m) for m in comp}
            if len(folders) > 1 or (len(comp) > 1 and folders & NO_CIRCLE_INSIDE):
                circles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_crosses_folders_or_sits_in_the_top_level_or_report() -> None:
    assert _circles(GRAPH) == []


def test_a_lazy_import_closes_a_circle(tmp_path: Path) -> None:
    """The old circle: report/model.py imported io inside a method, and io imports model."""
    fake = tmp_path / "model.py"
    fake.write_text("from .figures import COLORS\n\n\ndef save(r):\n    from .io import save_report\n")
    real = MODULES["dlaudit.report.model"]
    MODULES["dlaudit.report.model"] = fake
    try:
        found = _imports("dlaudit.report.model")
    finally:
        MODULES["dlaudit.report.model"] = real
    assert found == {"dlaudit.report.figures", "dlaudit.report.io"}
    graph = {**GRAPH, "dlaudit.report.model": found}
    assert any({"dlaudit.report.io", "dlaudit.report.model"} <= set(c) for c in _circles(graph))
    graph = {**GRAPH, "dlaudit.demo": GRAPH["dlaudit.demo"], "dlaudit.api": GRAPH["dlaudit.api"] | {"dlaudit.demo"}}
    assert any({"dlaudit.api", "dlaudit.demo"} <= set(c) for c in _circles(graph))  # the top level: api <-> demo


@pytest.mark.parametrize("statement", ["import dlaudit", "import dlaudit.cli"])
def test_importing_dlaudit_is_light_and_changes_nothing(statement: str) -> None:
    code = (
        f"{statement}\nimport sys, dlaudit._alloc as a\n"
        "heavy = sorted(m for m in ('torch', 'matplotlib', 'captum', 'shap', 'sklearn', 'pandas') if m in sys.modules)\n"
        "print(heavy, a.malloc_tuning_state()['reason'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] not attempted"


def _names_modality(node: ast.AST) -> bool:
    """Whether an expression reads a modality: a name or attribute called ``modality`` (``data.modality``...)."""
    return any(
        (isinstance(n, ast.Name) and n.id == "modality") or (isinstance(n, ast.Attribute) and n.attr == "modality")
        for n in ast.walk(node)
    )


def _is_string_literal(node: ast.AST) -> bool:
    """A string constant, or a tuple/list/set of them (``"image"``, ``("image", "tabular")``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(_is_string_literal(e) for e in node.elts)


def _modality_string_comparisons(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_names_modality(s) for s in sides) and any(_is_string_literal(s) for s in sides):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_grep_finds_modality_string_comparisons() -> None:
    source = (
        "a = data.modality == 'image'\n"
        "b = ctx.modality in ('image', 'tabular')\n"
        "c = 'tabular' != bundle.card.modality\n"
        "d = data.kind.columns\n"
        "e = modality.name in self.modalities\n"
    )
    assert [f.split(":")[0] for f in _modality_string_comparisons(source)] == ["line 1", "line 2", "line 3"]


def test_no_module_outside_modalities_and_data_compares_modality_strings() -> None:
    """Analyses ask the Modality object (``data.kind.spatial``...), never compare its name with a string."""
    allowed = ("dlaudit.modalities", "dlaudit.data")
    bad = {
        name: found
        for name, path in MODULES.items()
        if not any(name == a or name.startswith(a + ".") for a in allowed)
        and (found := _modality_string_comparisons(path.read_text()))
    }
    assert not bad
