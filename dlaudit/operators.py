"""Which operators a model's graph may call: an allow-list of side-effect-free tensor operations.

Unpickling is not the only way a model file runs code. A TorchScript or ``torch.export``
graph calls operators, and some of torch's own operators reach outside the model's
tensors: ``aten::from_file(path, shared=True)`` maps any file into a tensor that an
in-place op then writes (a ``.pth`` file dropped into a Python environment is code
execution the next time Python starts there), ``aten::save`` writes a file,
``aten::_print``/``prim::Print`` print, ``prim::PythonOp`` runs Python, operators of
other namespaces are whatever an extension registered. dlaudit runs every model once
at load, so the graph is audited before that: every operator it calls must be on the
allow-list below, else the model is refused with one line naming the operator and
where it is.

**Allowed**

- operators of torch's own tensor libraries, ``aten``, ``prims`` and the quantized
  kernels (``quantized``, ``_quantized``), that torch registers a schema for, except
  the refused ones below and any whose schema takes a file name;
- TorchScript's ``prim`` operators that build and take apart values (constants,
  attributes, lists, tuples, ``If``/``Loop``, method calls on the model's own modules),
  on :data:`PRIM_STRUCTURE` or registered with a schema, except the refused ones;
- in ``torch.export`` graphs, the plain arithmetic that symbolic shapes need
  (``_operator.mul``, ``math.ceil``, ``torch.sym_max``, ...) and the control-flow
  operators whose bodies are graphs of the same program (``cond``, ``while_loop``, ...).

**Refused** (:data:`REFUSED`): file access (``from_file``, ``save``), printing
(``_print``, ``print``, ``Print``), reseeding the process's random number generator
(``manual_seed``, ``seed``), threads and other processes (``fork``, ``wait``,
``rpc_*``), Python calls (``PythonOp``), profiler and statistics hooks, distributed
collectives and profiler namespaces (:data:`REFUSED_NAMESPACES`), and every operator
that is not one of the above (an unknown name, another namespace, a call of a function
the audit cannot see).

``trust_ops=True`` (``--trust-ops``) lets through operators of other namespaces and
operators this torch does not know (a custom extension the user has imported); what
:data:`REFUSED` names stays refused. ``trust_pickle=True`` skips the whole archive
audit, this one included.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from typing import Any

import torch

__all__ = [
    "RefusedOperator",
    "ALLOWED_NAMESPACES",
    "REFUSED",
    "REFUSED_NAMESPACES",
    "PRIM_STRUCTURE",
    "operator_refusal",
    "target_refusal",
    "check_fx_graph",
    "check_torchscript",
    "scan_torchscript_code",
]


class RefusedOperator(Exception):
    """A model's graph calls an operator that is not on the allow-list."""

    def __init__(self, operator: str, where: str, why: str, *, trustable: bool) -> None:
        super().__init__(f"{operator} ({where}) {why}")
        self.operator = operator
        self.where = where
        self.why = why
        self.trustable = trustable  # whether --trust-ops would let it through


ALLOWED_NAMESPACES = frozenset({"aten", "prims", "quantized", "_quantized"})
"""torch's own tensor operators (in TorchScript also ``prim``, checked against its own list)."""

_FILES = "reads or writes files"
_PRINTS = "prints to the terminal"
_RNG = "reseeds the process's random number generator, which changes every later random number"
_THREADS = "runs work on another thread"
_PROCESSES = "calls another process"
_PYTHON = "runs Python code"
_PROFILER = "records profiling data"

REFUSED: dict[str, str] = {
    "from_file": "maps a file into a tensor, so it " + _FILES,
    "save": _FILES,
    "load": _FILES,
    "_print": _PRINTS,
    "print": _PRINTS,
    "Print": _PRINTS,
    "manual_seed": _RNG,
    "seed": _RNG,
    "fork": _THREADS,
    "wait": _THREADS,
    "awaitable": _THREADS,
    "awaitable_nowait": _THREADS,
    "awaitable_wait": _THREADS,
    "rpc_async": _PROCESSES,
    "rpc_sync": _PROCESSES,
    "rpc_remote": _PROCESSES,
    "PythonOp": _PYTHON,
    "IgnoredPythonOp": _PYTHON,
    "profile": _PROFILER,
    "profile_ivalue": _PROFILER,
    "AddStatValue": _PROFILER,
    "TimePoint": _PROFILER,
}
"""Operators of the allowed namespaces (and ``prim``) that reach outside the model's tensors, with why."""

REFUSED_NAMESPACES: dict[str, str] = {
    "profiler": _PROFILER,
    "c10d": _PROCESSES,
    "_c10d_functional": _PROCESSES,
    "_c10d_functional_autograd": _PROCESSES,
    "_dtensor": _PROCESSES,
    "symm_mem": _PROCESSES,
    "debugprims": _PRINTS,
    "debug_mode_ops": _PRINTS,
}
"""Namespaces of torch's that are refused even with ``trust_ops``."""

_FILE_ARGUMENTS = frozenset({"filename", "file", "filepath", "fname", "path"})
"""A schema argument of one of these names: the operator opens a file (``from_file``, ``save``)."""

PRIM_STRUCTURE = frozenset(
    "Constant GetAttr SetAttr CallMethod CreateObject ListConstruct ListUnpack TupleConstruct TupleUnpack "
    "TupleIndex TupleSlice DictConstruct DictIndex If Loop Return Uninitialized unchecked_cast isinstance "
    "Enter Exit RaiseException NumToTensor ImplicitTensorToNum unchecked_unwrap_optional device dtype layout "
    "requires_grad data grad shape tolist min max abs id index itemsize nbytes name type rangelist StringIndex "
    "EnumName EnumValue ModuleContainerIndex BroadcastSizes ChunkSizes ConstantChunk AutogradAdd AutogradZero "
    "AutogradAllZero AutogradAllNonZero AutogradAnyNonZero Guard TypeCheck RequiresGradCheck "
    "is_cpu is_cuda is_ipu is_maia is_meta is_mkldnn is_mps is_mtia is_nested is_quantized is_sparse "
    "is_sparse_csr is_vulkan is_xla is_xpu".split()
)
"""TorchScript's ``prim`` operators that build, take apart or inspect values (no effect outside the graph)."""

_HIGHER_ORDER = frozenset(
    "cond while_loop map_impl scan associative_scan invoke_subgraph wrap_with_set_grad_enabled "
    "wrap_with_autocast flex_attention out_dtype".split()
)
"""``torch.export`` control flow: its bodies are graphs of the same program, audited with it."""

_OPERATOR_NAMES = frozenset(
    "add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor not_ invert getitem "
    "lshift rshift matmul index truth".split()
)
_MATH_NAMES = frozenset(
    "ceil floor trunc sqrt exp log log2 log10 sin cos tan tanh fabs pow isnan isinf isfinite".split()
)
_TORCH_SYM_FUNCTIONS = frozenset(
    "sym_float sym_int sym_max sym_min sym_not sym_ite sym_sqrt sym_sum sym_fresh_size _sym_sqrt _assert _check "
    "_check_is_size _assert_async _assert_scalar".split()
)


@functools.cache
def _schemas(qualified: str) -> tuple[Any, ...]:
    try:
        return tuple(torch._C._jit_get_schemas_for_operator(qualified))
    except RuntimeError:
        return ()


def operator_refusal(namespace: str, name: str, *, trust_ops: bool = False) -> tuple[str, bool] | None:
    """Why ``namespace::name`` may not run, and whether ``trust_ops`` would allow it; None when it may.

    Parameters
    ----------
    namespace, name
        The operator as TorchScript writes it (``aten``, ``from_file``); ``prim`` is
        TorchScript's own namespace.
    trust_ops
        Let through operators of other namespaces and operators torch does not know.
    """
    if namespace in REFUSED_NAMESPACES:
        return REFUSED_NAMESPACES[namespace], False
    if namespace in ALLOWED_NAMESPACES or namespace == "prim":
        if name in REFUSED:
            return REFUSED[name], False
    if namespace == "prim":
        if name in PRIM_STRUCTURE or _schemas(f"prim::{name}"):
            return None
        return "is not one of TorchScript's value operators the audit knows", True
    if namespace not in ALLOWED_NAMESPACES:
        if trust_ops:
            return None
        return f"is an operator of the namespace {namespace!r}, not one of torch's tensor operators", True
    schemas = _schemas(f"{namespace}::{name}")
    if not schemas:
        return None if trust_ops else ("is not an operator this torch knows", True)
    opens = _opens_files(namespace, name)
    return None if opens is None else (opens, False)


def target_refusal(target: str, *, trust_ops: bool = False) -> tuple[str, bool] | None:
    """Why a serialized ``torch.export`` node target may not run (see :func:`operator_refusal`); None when it may.

    ``target`` is the name the deserializer resolves: ``torch.ops.aten.relu.default``,
    ``_operator.mul``, ``math.ceil``, ``torch.sym_max``, ``torch.ops.higher_order.cond``.
    """
    parts = target.split(".")
    if any(not p or p.startswith("__") for p in parts):
        return "is not an operator name", False
    head, rest = parts[0], parts[1:]
    if head == "_operator" and len(rest) == 1 and rest[0] in _OPERATOR_NAMES:
        return None
    if head == "math" and len(rest) == 1 and rest[0] in _MATH_NAMES:
        return None
    if head == "torch" and len(rest) == 1 and rest[0] in _TORCH_SYM_FUNCTIONS:
        return None
    if head == "torch" and len(rest) >= 3 and rest[0] == "ops" and len(rest) <= 4:
        namespace, name = rest[1], rest[2]
        if namespace == "higher_order":
            if name in _HIGHER_ORDER and len(rest) == 3:
                return None
            return "is a higher-order operator that is not plain control flow (effects, kernels, hooks)", False
        return operator_refusal(namespace, name, trust_ops=trust_ops)
    if head.startswith("#"):
        return "is an extension operator, resolved by whatever handler is registered", True
    return "is not a torch operator or plain arithmetic", False


def _fx_target_name(target: Any) -> str:
    if isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return f"torch.ops.{target}"  # str() is "aten.relu.default"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"torch.ops.higher_order.{target.name()}"
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or repr(target)
    if module in ("_operator", "operator"):
        return f"_operator.{name}"
    if module == "math":
        return f"math.{name}"
    if module.startswith("torch") and name in _TORCH_SYM_FUNCTIONS:
        return f"torch.{name}"
    return f"{module}.{name}"


def check_fx_graph(graph_module: torch.nn.Module, *, trust_ops: bool = False) -> None:
    """Raise :class:`RefusedOperator` unless every ``call_function`` of every graph in ``graph_module`` is allowed.

    The second line of defence for a loaded ``torch.export`` program (the archive audit
    checked the serialized graph before torch read it).
    """
    for prefix, sub in graph_module.named_modules():
        graph = getattr(sub, "graph", None)
        if not isinstance(sub, torch.fx.GraphModule) or graph is None:
            continue
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            name = _fx_target_name(node.target)
            refusal = target_refusal(name, trust_ops=trust_ops)
            if refusal is not None:
                where = f"graph node {node.name}" + (f" of submodule {prefix}" if prefix else "")
                raise RefusedOperator(name, where, refusal[0], trustable=refusal[1])


# -- TorchScript ------------------------------------------------------------------------


def _nodes(block: Any) -> Iterator[Any]:
    """Every node of a TorchScript graph or block, inside ``If``/``Loop`` blocks and subgraphs too."""
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _nodes(inner)
        if node.hasAttribute("Subgraph"):
            yield from _nodes(node.g("Subgraph"))


def _torchbind_namespace(type_name: str) -> str | None:
    """``quantized`` for ``__torch__.torch.classes.quantized.LinearPackedParamsBase``; None for the model's own classes."""
    prefix = "__torch__.torch.classes."
    return type_name[len(prefix) :].split(".", 1)[0] if type_name.startswith(prefix) else None


def _check_node(node: Any, where: str, trust_ops: bool) -> None:
    kind = node.kind()
    namespace, _, name = kind.partition("::")
    if kind in ("prim::CallMethod", "prim::Enter", "prim::Exit"):
        receiver = str(node.inputsAt(0).type())
        ns = _torchbind_namespace(receiver)
        if ns is not None and ns not in ALLOWED_NAMESPACES and not trust_ops:
            raise RefusedOperator(
                f"{kind} on {receiver}",
                where,
                f"calls a C++ class of the namespace {ns!r}, not one of torch's tensor libraries",
                trustable=True,
            )
        return
    if kind == "prim::CallFunction":
        raise RefusedOperator(kind, where, "calls a function the audit cannot see into", trustable=False)
    refusal = operator_refusal(namespace, name, trust_ops=trust_ops)
    if refusal is not None:
        raise RefusedOperator(kind, where, refusal[0], trustable=refusal[1])


def _script_methods(module: Any) -> Iterator[tuple[str, str, Any]]:
    """(submodule path, method name, graph) for every method of ``module`` and of all its submodules."""
    for path, sub in module.named_modules():
        c = getattr(sub, "_c", None)
        if c is None or not hasattr(c, "_method_names"):
            continue
        for method in c._method_names():
            yield path, method, c._get_method(method).graph


def check_torchscript(module: torch.nn.Module, *, trust_ops: bool = False) -> None:
    """Raise :class:`RefusedOperator` unless every node of every method's inlined graph is allowed.

    Walks each method (``forward`` and every other, ``__setstate__`` included) of the
    module and of every submodule, with the functions and methods it calls inlined
    (:func:`torch._C._jit_pass_inline`), into ``If``/``Loop`` blocks and subgraphs.
    """
    for path, method, graph in _script_methods(module):
        copy = graph.copy()
        torch._C._jit_pass_inline(copy)
        where = f"in method {method} of " + (f"submodule {path}" if path else "the top module")
        for node in _nodes(copy):
            _check_node(node, where, trust_ops)


_CALL_ROOTS = ("torch", "ops")


def _dotted(node: ast.AST) -> list[str] | None:
    """``["torch", "ops", "aten", "relu"]`` for ``torch.ops.aten.relu``; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def scan_torchscript_code(text: str, member: str, *, trust_ops: bool = False) -> None:
    """Refuse a TorchScript archive's code (``code/__torch__/*.py``) that names a refused operator, before torch loads it.

    torch compiles this code when it loads the archive and runs its ``__setstate__``
    methods there, so the code is read first as text (Python syntax, never executed):
    every call of a name in :data:`REFUSED` (``torch.from_file(...)``, ``t.save(...)``,
    ``print(...)``) and every reference to an operator or class of another namespace
    (``ops.myns.op``, ``torch.classes.myns.Cls``) is refused. The graphs are checked
    again, operator by operator, once loaded (:func:`check_torchscript`).
    """
    try:
        tree = ast.parse(text, filename=member)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise RefusedOperator(
            "code", member, f"cannot be read as TorchScript code ({type(err).__name__})", trustable=False
        ) from err
    for node, where in _located(tree, member):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            dotted = _dotted(func)
            shown = ".".join(dotted) if dotted and dotted[0] in _CALL_ROOTS else name
            if name in REFUSED:
                raise RefusedOperator(shown or "", where, REFUSED[name], trustable=False)
            namespace = _call_namespace(dotted)
            if namespace is not None and name is not None:
                opens = _opens_files(namespace, name)
                if opens is not None:
                    raise RefusedOperator(shown or name, where, opens, trustable=False)
        elif isinstance(node, ast.Attribute):
            parts = _dotted(node)
            if not parts:
                continue
            if parts[-1] in REFUSED and parts[0] in _CALL_ROOTS:
                raise RefusedOperator(".".join(parts), where, REFUSED[parts[-1]], trustable=False)
            for i in range(len(parts) - 2):
                if parts[i] in ("ops", "classes") and (i == 0 or parts[i - 1] == "torch"):
                    _check_namespace(".".join(parts), parts[i + 1], where, trust_ops)


def _call_namespace(dotted: list[str] | None) -> str | None:
    """``aten`` for ``torch.relu(...)``, ``NS`` for ``ops.NS.op(...)``/``torch.ops.NS.op(...)``; else None."""
    if not dotted:
        return None
    if len(dotted) == 2 and dotted[0] == "torch":
        return "aten"
    if len(dotted) == 3 and dotted[0] == "ops":
        return dotted[1]
    if len(dotted) == 4 and dotted[:2] == ["torch", "ops"]:
        return dotted[2]
    return None


def _opens_files(namespace: str, name: str) -> str | None:
    """Why an operator whose schema takes a file name is refused; None for any other (or unknown) operator."""
    for schema in _schemas(f"{namespace}::{name}"):
        if any(arg.name in _FILE_ARGUMENTS for arg in schema.arguments):
            return f"takes a file name ({schema.name}), so it " + _FILES
    return None


def _located(tree: ast.AST, member: str) -> Iterator[tuple[ast.AST, str]]:
    """Every node of ``tree`` with where it is: ``in method forward of class Net (member line 12)``."""
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, ast.ClassDef):
            scope = f"class {node.name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scope = f"method {node.name} of {scope}" if scope.startswith("class") else f"function {node.name}"
        line = getattr(node, "lineno", None)
        yield node, (f"in {scope}, " if scope else "") + (f"{member} line {line}" if line else member)
        stack.extend((child, scope) for child in ast.iter_child_nodes(node))


def _check_namespace(name: str, namespace: str, where: str, trust_ops: bool) -> None:
    if namespace in REFUSED_NAMESPACES:
        raise RefusedOperator(name, where, REFUSED_NAMESPACES[namespace], trustable=False)
    if namespace not in ALLOWED_NAMESPACES and namespace != "prim" and not trust_ops:
        raise RefusedOperator(
            name,
            where,
            f"is an operator or class of the namespace {namespace!r}, not one of torch's tensor operators",
            trustable=True,
        )
