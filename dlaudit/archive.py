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
pickled module. :func:`guarded_loading` then keeps torch's loader on
``weights_only=True`` while it reads an audited archive (a second line of defence).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import pickle
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["UnsafeArchive", "audit_archive", "audit_pickle", "guarded_loading", "TORCHSCRIPT", "EXPORT"]

TORCHSCRIPT = "torchscript"
EXPORT = "torch.export"


class UnsafeArchive(Exception):
    """An archive member would run code (or cannot be shown not to) if torch read it."""

    def __init__(self, member: str, why: str) -> None:
        super().__init__(f"{member}: {why}")
        self.member = member
        self.why = why


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


def _safe_target(target: str) -> bool:
    """Whether a graph node's target names a torch operator or plain arithmetic, as the deserializer resolves it."""
    parts = target.split(".")
    if any(p.startswith("__") for p in parts):
        return False
    head, rest = parts[0], parts[1:]
    if head == "_operator":
        return len(rest) == 1 and rest[0] in _OPERATOR_NAMES
    if head == "math":
        return len(rest) == 1 and rest[0] in _MATH_NAMES
    if head == "torch":
        if len(rest) == 1 and rest[0] in _TORCH_SYM_FUNCTIONS:
            return True
        if not rest or rest[0] != "ops":
            return False
        obj: Any = torch
        for name in rest:
            if not hasattr(obj, name):
                return True  # the deserializer keeps an unresolvable target as a string, which cannot run
            obj = getattr(obj, name)
        return isinstance(obj, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator))
    if head.startswith("#"):
        return False  # an extension operator: resolved by whatever handler is registered
    return True  # anything else stays a string in the graph


def _sympy_names() -> frozenset[str]:
    names = set(
        "Symbol Dummy Integer Float Rational Add Mul Pow Mod Max Min Abs Eq Ne Lt Le Gt Ge StrictLessThan "
        "StrictGreaterThan LessThan GreaterThan Equality Unequality And Or Not Piecewise ExprCondPair floor ceiling "
        "sqrt true false oo zoo nan pi E S Half One Zero NegativeOne Infinity NegativeInfinity BooleanTrue "
        "BooleanFalse IntInfinity NegativeIntInfinity int_oo".split()
    )
    try:
        import torch.utils._sympy.functions as functions

        names.update(n for n in dir(functions) if n[:1].isupper() and not n.startswith("_"))
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


def _safe_expression(text: str) -> bool:
    """Whether ``sympy.sympify(text)`` can only build an expression: arithmetic on symbols and sympy's own classes.

    sympify ``eval``\\ s its string, so anything beyond that (attributes, subscripts, a
    call of a name that is not a sympy class, a string handed to a function that would
    sympify it in turn) is refused.
    """
    if len(text) > 10_000:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False

    def ok(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (int, float, bool)) and not isinstance(node.value, complex)
        if isinstance(node, ast.Name):
            return node.id in _SYMPY_NAMES or (_IDENT.match(node.id) is not None and "__" not in node.id)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _SYMPY_NAMES:
                return False
            func = node.func.id
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

    return ok(tree)


def _audit_graph(doc: Any, member: str) -> None:
    """Every node target and every symbolic expression of a serialized ExportedProgram."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "target" and isinstance(value, str) and not _safe_target(value):
                    raise UnsafeArchive(
                        member, f"a graph node that calls {value[:120]!r}, which is not a torch operator"
                    )
                if key == "expr_str" and isinstance(value, str) and not _safe_expression(value):
                    raise UnsafeArchive(
                        member,
                        f"a symbolic-shape expression that is not plain arithmetic ({value[:120]!r}); torch would eval it",
                    )
                if isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))


# -- archives ---------------------------------------------------------------------------

_MAX_MEMBERS = 100_000
_MAX_JSON_BYTES = 512 * 2**20


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
        raise UnsafeArchive(info.filename, f"a member that cannot be read ({err})") from err


def _json(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    if info.file_size > _MAX_JSON_BYTES:
        raise UnsafeArchive(info.filename, f"a JSON member of {info.file_size:,} bytes, too large to check")
    try:
        return json.loads(_read(zf, info))
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


def _audit_export(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    names = [i.filename for i in infos]
    root = _root(names)
    by_rel = {i.filename[len(root) :]: i for i in infos if i.filename.startswith(root)}
    if len(by_rel) != len(infos):
        raise UnsafeArchive(names[0], "members outside the archive's folder")
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
                _audit_graph(doc, info.filename)
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


def _audit_torchscript(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        name = info.filename
        if name.endswith((".pkl", ".debug_pkl")):
            audit_pickle(_read(zf, info), _torchscript_global, name)
        elif name.endswith((".so", ".dll", ".dylib", ".pyd")):
            raise UnsafeArchive(name, "compiled native code")


def audit_archive(path: str, kind: str) -> None:
    """Raise :class:`UnsafeArchive` unless reading the archive at ``path`` as ``kind`` runs no code from it.

    ``kind`` is :data:`TORCHSCRIPT` or :data:`EXPORT`. Nothing is unpickled or
    evaluated: pickles go through a restricted unpickler that builds inert stand-ins.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise UnsafeArchive(path, f"{len(infos):,} members, more than any model archive holds")
            (_audit_torchscript if kind == TORCHSCRIPT else _audit_export)(zf, infos)
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
