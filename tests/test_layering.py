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
