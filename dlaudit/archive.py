"""Check a model archive before torch reads it, so that loading a model never runs code from the file.

torch's own readers are not safe on hostile files, even the ones that look like data:

- ``torch.export.load`` unpickles archive members with ``weights_only=False`` (weights and
  constants stored with ``use_pickle``, and sample inputs as a fallback), calls
  ``pickle.loads`` on "opaque" constants, builds torchbind objects from "custom" ones,
  loads compiled AOTInductor libraries (native code), evaluates every symbolic-shape
  expression of the graph with ``sympy.sympify`` (which ``eval``\\ s the string), and
  resolves each graph node's target by name from ``torch``, ``operator`` and ``math``
  (so a graph can call ``torch.save`` or anything else reachable from ``torch``);
- TorchScript archives hold pickles (``data.pkl``, ``constants.pkl``, ``*.debug_pkl``).

:func:`audit_archive` reads the archive as data first, without unpickling anything
and without evaluating anything: every pickled member goes through a restricted
unpickler (torch's ``weights_only`` allow-list for ``torch.save`` payloads, a stricter
list for TorchScript), every graph target must resolve to a torch operator or a
plain arithmetic function, every symbolic expression must parse as arithmetic on
symbols, and members of kinds that only run code (native libraries, pickled Python
objects) are refused. Anything it cannot vouch for raises :class:`UnsafeArchive`,
which :mod:`dlaudit.bundle` turns into the same ``--trust-pickle`` message as a
pickled module. What the graphs *do* is audited too: every operator they call (and, for
TorchScript, every name its code calls) must be on the allow-list of :mod:`dlaudit.operators`
(a :class:`~dlaudit.operators.RefusedOperator` otherwise). Declared member sizes are checked
before anything is read (:func:`check_sizes`), and a member named twice is refused.
:func:`guarded_loading` then keeps torch's loader on
``weights_only=True`` while it reads an audited archive (a second line of defence).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import pickle
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from .operators import RefusedOperator, scan_torchscript_code, target_refusal

__all__ = [
    "UnsafeArchive",
    "OversizedArchive",
    "audit_archive",
    "audit_pickle",
    "check_sizes",
    "guarded_loading",
    "TORCHSCRIPT",
    "EXPORT",
]

TORCHSCRIPT = "torchscript"
EXPORT = "torch.export"


class UnsafeArchive(Exception):
    """An archive member would run code (or cannot be shown not to) if torch read it."""

    def __init__(self, member: str, why: str) -> None:
        super().__init__(f"{member}: {why}")
        self.member = member
        self.why = why


class OversizedArchive(UnsafeArchive):
    """An archive whose members, as declared, are too large to read (a zip bomb, more than memory)."""


# -- pickles ----------------------------------------------------------------------------


class _Inert:
    """What the audit builds in place of every allowed global: it accepts anything and does nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _AuditUnpickler(pickle.Unpickler):
    """Walks a pickle and refuses any global outside ``allowed``; builds nothing real.

    Every way a pickle reaches a callable (GLOBAL, STACK_GLOBAL, INST, OBJ and the
    copyreg extension codes) goes through :meth:`find_class`, so a payload is refused
    before anything could call it, and allowed globals are replaced by :class:`_Inert`.
    """

    def __init__(self, data: bytes, allowed: Callable[[str, str], bool]) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if not self._allowed(module, name):
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which is not on the allow-list")
        return _Inert

    def persistent_load(self, pid: Any) -> Any:
        return None


_TORCHSCRIPT_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_sparse_tensor"),
    ("torch", "device"),
}
_STORAGE = re.compile(r"^[A-Z][A-Za-z]*Storage$")


def _torchscript_global(module: str, name: str) -> bool:
    """TorchScript's C++ unpickler resolves only script classes of the archive and a few torch helpers."""
    if module == "__torch__" or module.startswith("__torch__."):
        return "__" not in name  # a class compiled from the archive's TorchScript code
    if module == "torch.jit._pickle":
        return name.startswith(("build_", "restore_type_tag"))
    if module == "torch" and _STORAGE.match(name):
        return True
    return (module, name) in _TORCHSCRIPT_GLOBALS


def audit_pickle(data: bytes, allowed: Callable[[str, str], bool], member: str) -> None:
    """Refuse ``data`` unless it is a well-formed pickle that names only ``allowed`` globals."""
    try:
        _AuditUnpickler(data, allowed).load()
    except pickle.UnpicklingError as err:
        raise UnsafeArchive(member, f"pickled Python objects: {err}") from err
    except (
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as err:
        raise UnsafeArchive(member, f"a pickle that cannot be checked ({type(err).__name__}: {err})") from err


def _audit_torch_save(data: bytes, member: str) -> None:
    """A ``torch.save`` payload: read with torch's ``weights_only`` unpickler, the documented safe reader."""
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        raise UnsafeArchive(
            member,
            f"pickled Python objects that weights_only=True refuses ({first[-1][:200] if first else 'UnpicklingError'})",
        ) from err
    except Exception as err:  # torch raises many kinds on malformed payloads
        raise UnsafeArchive(
            member, f"a torch.save payload that cannot be checked ({type(err).__name__}: {str(err)[:200]})"
        ) from err


# -- graphs -----------------------------------------------------------------------------


def _safe_target(target: str) -> bool:
    """Whether a serialized graph node's target is on the operator allow-list (see :mod:`dlaudit.operators`)."""
    return target_refusal(target) is None


def _sympy_names() -> frozenset[str]:
    names = set(
        "Symbol Dummy Integer Float Rational Add Mul Pow Mod Max Min Abs Eq Ne Lt Le Gt Ge StrictLessThan "
        "StrictGreaterThan LessThan GreaterThan Equality Unequality And Or Not Piecewise ExprCondPair floor ceiling "
        "sqrt true false oo zoo nan pi E S Half One Zero NegativeOne Infinity NegativeInfinity BooleanTrue "
        "BooleanFalse IntInfinity NegativeIntInfinity int_oo".split()
    )
    try:
        import sympy
        import torch.utils._sympy.functions as functions

        names.update(
            n
            for n in dir(functions)
            if n[:1].isupper()
            and isinstance(getattr(functions, n), type)
            and issubclass(getattr(functions, n), sympy.Basic)
        )
    except ImportError:  # pragma: no cover - older torch
        pass
    return frozenset(names)


_SYMPY_NAMES = _sympy_names()
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_EXPR_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Load,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


_MAX_EXPRESSION = 2_000
"""Characters in one symbolic-shape expression (torch writes a few dozen)."""
_MAX_INTEGER = 2**64
"""Largest integer literal in an expression (torch's bounds reach about 2**63)."""
_MAX_EXPONENT = 64
"""Largest constant exponent or shift: a power of a power of constants grows beyond any memory (``9**9**9**9``)."""
_GROWING_CALLS = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift"})


def _grows(node: ast.AST) -> bool:
    """Whether ``node`` is a power or a left shift (an operator whose result can outgrow memory)."""
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, (ast.Pow, ast.LShift))
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _GROWING_CALLS


def _bounded_growth(base: ast.AST, exponent: ast.AST) -> bool:
    """A power (or shift) sympy can evaluate: a small constant exponent of a base that holds no power itself."""
    if any(_grows(inner) for inner in ast.walk(base)):
        return False
    if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub):
        exponent = exponent.operand
    if isinstance(exponent, ast.Constant):
        return isinstance(exponent.value, (int, float)) and abs(exponent.value) <= _MAX_EXPONENT
    # a symbolic exponent stays symbolic, unless constants in it fold into a large one
    return not any(isinstance(inner, ast.Constant) or _grows(inner) for inner in ast.walk(exponent))


def _safe_expression(text: str) -> bool:
    """Whether ``sympy.sympify(text)`` can only build an expression: small arithmetic on symbols and sympy's classes.

    sympify ``eval``\\ s its string, so anything beyond that (attributes, subscripts, a
    call of a name that is not a sympy class, a string handed to a function that would
    sympify it in turn) is refused; so is arithmetic that would not finish: more than
    :data:`_MAX_EXPRESSION` characters, integers beyond :data:`_MAX_INTEGER`, and powers
    or shifts by more than :data:`_MAX_EXPONENT` or of a power (``s31 + 0*9**9**9**9``).
    """
    if len(text) > _MAX_EXPRESSION:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False

    def ok(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or isinstance(value, float):
                return True
            return isinstance(value, int) and abs(value) <= _MAX_INTEGER
        if isinstance(node, ast.Name):
            return node.id in _SYMPY_NAMES or (_IDENT.match(node.id) is not None and "__" not in node.id)
        if isinstance(node, ast.BinOp) and _grows(node) and not _bounded_growth(node.left, node.right):
            return False
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _SYMPY_NAMES:
                return False
            func = node.func.id
            if func in _GROWING_CALLS and (len(node.args) != 2 or not _bounded_growth(node.args[0], node.args[1])):
                return False
            for i, arg in enumerate(node.args):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if func in ("Symbol", "Dummy") and i == 0 and _IDENT.match(arg.value) and "__" not in arg.value:
                        continue
                    if func in ("Float", "Integer", "Rational") and _NUMBER.match(arg.value):
                        continue
                    return False
                if not ok(arg):
                    return False
            return all(
                isinstance(k.value, ast.Constant) and isinstance(k.value.value, (int, bool)) and k.arg is not None
                for k in node.keywords
            )
        if isinstance(node, _EXPR_NODES):
            return all(ok(child) for child in ast.iter_child_nodes(node))
        return False

    try:
        return ok(tree)
    except RecursionError:
        return False


def _node_name(node: dict[str, Any]) -> str | None:
    """A serialized graph node's name (or its first output's: ``relu``), to say where an operator is."""
    if isinstance(node.get("name"), str):
        return node["name"][:80]
    for out in node.get("outputs") or []:
        if isinstance(out, dict):
            for value in out.values():
                if isinstance(value, dict) and isinstance(value.get("name"), str):
                    return value["name"][:80]
    return None


def _audit_graph(doc: Any, member: str, *, trust_ops: bool = False) -> None:
    """Every node target (and operator argument) and every symbolic expression of a serialized ExportedProgram.

    Targets must be on the operator allow-list (:func:`dlaudit.operators.target_refusal`);
    a refused one raises :class:`~dlaudit.operators.RefusedOperator`.
    """
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("target", "as_operator") and isinstance(value, str):
                    refusal = target_refusal(value, trust_ops=trust_ops)
                    if refusal is not None:
                        name = _node_name(item)
                        where = f"graph node {name} in {member}" if name else f"a graph node in {member}"
                        raise RefusedOperator(value[:120], where, refusal[0], trustable=refusal[1])
                if key == "expr_str" and isinstance(value, str) and not _safe_expression(value):
                    raise UnsafeArchive(
                        member,
                        f"a symbolic-shape expression that is not small plain arithmetic ({value[:120]!r}); "
                        "torch would eval it",
                    )
                if isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))


# -- archives ---------------------------------------------------------------------------

_MAX_MEMBERS = 100_000
_MAX_JSON_BYTES = 512 * 2**20
_MAX_READ_BYTES = 2 * 2**30
"""Largest member the audit reads itself (pickles, code, ``torch.save`` payloads); JSON: :data:`_MAX_JSON_BYTES`."""
_MAX_RATIO = 100
"""Largest compression ratio of a member over :data:`_RATIO_FLOOR` bytes: torch stores members uncompressed."""
_RATIO_FLOOR = 16 * 2**20


def _memory_bytes() -> int | None:
    """This machine's physical memory, or None where it cannot be told."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_sizes(path: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose members, as declared, would not fit in memory or inflate like a zip bomb.

    Runs on the declared sizes before anything is read (also with ``trust_pickle``):
    torch reads every member whole, so a 3 MB file whose member inflates to 3 GiB would
    take 3 GiB. Members that the audit reads itself are read at most to their declared
    size (``zipfile`` stops there).
    """
    if len(infos) > _MAX_MEMBERS:
        raise OversizedArchive(path, f"{len(infos):,} members, more than any model archive holds")
    total = 0
    for info in infos:
        total += info.file_size
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > _RATIO_FLOOR
            and info.file_size > _MAX_RATIO * max(info.compress_size, 1)
        ):
            raise OversizedArchive(
                info.filename,
                f"a member that inflates from {info.compress_size:,} to {info.file_size:,} bytes "
                f"({info.file_size // max(info.compress_size, 1):,}-fold; a zip bomb), which torch would read whole",
            )
    memory = _memory_bytes()
    if memory is not None and total > memory:
        raise OversizedArchive(
            path,
            f"members of {total:,} bytes in all, more than this machine's memory ({memory:,} bytes), which torch would read whole",
        )


def _duplicates(path: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a member name that appears twice: torch would read one copy and the audit might check the other."""
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise UnsafeArchive(
                info.filename,
                "a member that appears twice in the archive (torch and the audit could read different copies)",
            )
        seen.add(info.filename)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int = _MAX_READ_BYTES) -> bytes:
    if info.file_size > limit:
        raise UnsafeArchive(info.filename, f"a member of {info.file_size:,} bytes, too large to check")
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
        raise UnsafeArchive(info.filename, f"a member that cannot be read ({err})") from err


def _json(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    if info.file_size > _MAX_JSON_BYTES:
        raise UnsafeArchive(info.filename, f"a JSON member of {info.file_size:,} bytes, too large to check")
    try:
        return json.loads(_read(zf, info, _MAX_JSON_BYTES))
    except (ValueError, RecursionError) as err:
        raise UnsafeArchive(info.filename, f"malformed JSON ({err})") from err


def _root(names: list[str]) -> str:
    """The archive's top folder (``model/``), or '' when members sit at the top."""
    firsts = {n.split("/", 1)[0] for n in names if "/" in n}
    return f"{firsts.pop()}/" if len(firsts) == 1 and all("/" in n for n in names) else ""


def _payload_config(doc: Any, member: str) -> dict[str, dict[str, Any]]:
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise UnsafeArchive(member, "a payload configuration of an unknown layout")
    return config


_PT2_PLAIN = {"archive_format", "archive_version", "byteorder", "version", ".data/version", ".data/serialization_id"}


def _audit_export(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], trust_ops: bool) -> None:
    names = [i.filename for i in infos]
    root = _root(names)
    outside = [n for n in names if not n.startswith(root)]
    if outside:
        raise UnsafeArchive(outside[0], f"a member outside the archive's folder {root!r}")
    by_rel = {i.filename[len(root) :]: i for i in infos}
    raw: set[str] = set()  # tensor payloads stored as plain bytes (never unpickled)
    pickled: set[str] = set()  # members torch will unpickle
    for rel, info in by_rel.items():
        if (
            rel.startswith("data/weights/")
            and rel.endswith("_weights_config.json")
            or rel.startswith("data/constants/")
            and rel.endswith("_constants_config.json")
        ):
            folder = rel.rsplit("/", 1)[0] + "/"
            for fqn, meta in _payload_config(_json(zf, info), info.filename).items():
                path = meta.get("path_name")
                if not isinstance(path, str):
                    raise UnsafeArchive(info.filename, f"an entry {fqn!r} without a path")
                base = path.rsplit("/", 1)[-1]
                if base.startswith(("custom_obj", "opaque_obj")):
                    raise UnsafeArchive(folder + path, "a pickled Python object (a custom or opaque constant)")
                (pickled if meta.get("use_pickle") else raw).add(folder + path)
    for rel, info in by_rel.items():
        if info.is_dir() or rel in _PT2_PLAIN or rel in raw and rel not in pickled:
            continue
        if rel.startswith("data/aotinductor/") or rel.endswith((".so", ".dll", ".dylib", ".pyd")):
            raise UnsafeArchive(info.filename, "compiled native code (an AOTInductor package), which runs when loaded")
        if rel.startswith("extra/"):
            continue  # read as text, never run
        if rel.endswith(".json"):
            doc = _json(zf, info)
            if rel.startswith("models/") or rel == "serialized_exported_program.json":
                _audit_graph(doc, info.filename, trust_ops=trust_ops)
            continue
        if (
            rel in pickled
            or rel.startswith(("data/sample_inputs/", "data/weights/", "data/constants/"))
            or rel.endswith((".pt", ".pkl"))
        ):
            _audit_torch_save(_read(zf, info), info.filename)
            continue
        raise UnsafeArchive(
            info.filename, "a member of a kind dlaudit does not know, so it cannot tell what torch would do with it"
        )


_MAX_CODE_BYTES = 64 * 2**20


def _audit_torchscript(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], trust_ops: bool) -> None:
    for info in infos:
        name = info.filename
        if name.endswith((".pkl", ".debug_pkl")):
            audit_pickle(_read(zf, info), _torchscript_global, name)
        elif name.endswith((".so", ".dll", ".dylib", ".pyd")):
            raise UnsafeArchive(name, "compiled native code")
        elif "/code/" in name and name.endswith(".py"):
            try:
                text = _read(zf, info, _MAX_CODE_BYTES).decode("utf-8")
            except UnicodeDecodeError as err:
                raise UnsafeArchive(name, "TorchScript code that is not UTF-8 text") from err
            scan_torchscript_code(text, name, trust_ops=trust_ops)


def audit_archive(path: str, kind: str, *, trust_ops: bool = False) -> None:
    """Raise :class:`UnsafeArchive` unless reading the archive at ``path`` as ``kind`` runs no code from it.

    ``kind`` is :data:`TORCHSCRIPT` or :data:`EXPORT`. Nothing is unpickled or
    evaluated: pickles go through a restricted unpickler that builds inert stand-ins.
    The operators the archive's graphs (or TorchScript code) call must be on the
    allow-list of :mod:`dlaudit.operators` (a :class:`~dlaudit.operators.RefusedOperator`
    otherwise; ``trust_ops`` lets through other namespaces).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            check_sizes(path, infos)
            _duplicates(path, infos)
            (_audit_torchscript if kind == TORCHSCRIPT else _audit_export)(zf, infos, trust_ops)
    except (zipfile.BadZipFile, OSError) as err:
        raise UnsafeArchive(path, f"a damaged zip archive ({err})") from err


# -- the second line of defence ---------------------------------------------------------

_GUARD = threading.RLock()


@contextlib.contextmanager
def guarded_loading() -> Iterator[None]:
    """While torch reads an audited archive: ``torch.load`` stays ``weights_only=True`` and
    ``pickle.loads`` in torch's archive reader refuses, whatever torch's code asks for."""
    original = torch.load

    def weights_only_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    package = None
    with contextlib.suppress(ImportError):
        from torch.export.pt2_archive import _package as package  # torch >= 2.7
    with _GUARD:
        torch.load = weights_only_load  # type: ignore[assignment]
        saved_pickle = getattr(package, "pickle", None) if package is not None else None
        if package is not None and saved_pickle is not None:
            package.pickle = _NoPickle()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            torch.load = original  # type: ignore[assignment]
            if package is not None and saved_pickle is not None:
                package.pickle = saved_pickle  # type: ignore[attr-defined]


class _NoPickle:
    """Stands in for the ``pickle`` module inside torch's archive reader during a guarded load."""

    UnpicklingError = pickle.UnpicklingError

    def loads(self, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("dlaudit refused to unpickle an archive member (a pickled Python object)")

    load = loads

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)
