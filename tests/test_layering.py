"""The layering rules of DESIGN.md, read from the source (every import, also inside functions).

Data flows one way: load -> analyses -> Report -> renderers; the CLI is a thin layer over
dlaudit.api; no import circles between modules of different folders.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dlaudit"
ANALYSIS_PACKAGES = ("dlaudit.explain", "dlaudit.robust", "dlaudit.fairness", "dlaudit.performance")


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


def test_cli_imports_only_the_api() -> None:
    assert GRAPH["dlaudit.cli"] == {"dlaudit.api"}
    tree = ast.parse(MODULES["dlaudit.cli"].read_text())
    third_party = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    third_party |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level
    }
    assert third_party - set(sys.stdlib_module_names) == {"click"}


def test_no_import_circle_crosses_folders() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
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
            if len({_folder(m) for m in comp}) > 1:
                circles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles


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
