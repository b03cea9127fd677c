"""Input and output paths, checked before any work, and the one way dlaudit opens an input file or writes an
output (no heavy imports).

Inputs. Every file a run reads (the model, its sidecar card, ``--card``, data files and folders, the dataset
a model's card names, configuration files including the implicit ``./pyproject.toml``, baselines named
anywhere, checkpoint folders) is collected by :func:`run_inputs`; :func:`check_input` and
:func:`read_input` are how each one is opened: only a regular file is read (a FIFO would hang, a device
like ``/dev/zero`` never ends), never more than a stated size, and a path that is not one says what it is.

Outputs. :func:`check_paths` refuses, before any work, an output that is one of the inputs (after
following symlinks, or a hard link to one), an output that is one of the files of an input folder (a new
file in a data folder is fine), two outputs that are the same file, an existing output that is not a
regular file (a FIFO, a device, a socket: it would be replaced by a regular file), and a location that
cannot be written. :func:`atomic_write` writes an output through a temporary file beside it; an output
that is a symlink stays one, and the file it points to is replaced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, DlauditError

__all__ = [
    "check_paths",
    "check_input",
    "read_input",
    "run_inputs",
    "atomic_write",
    "Folder",
    "sidecar_paths",
    "resolved",
    "shown",
    "method_outputs",
    "JSON_LIMIT",
    "TOML_LIMIT",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

JSON_LIMIT = 256 << 20
"""The largest JSON input (a card, a baseline report) dlaudit reads: 256 MiB."""
TOML_LIMIT = 16 << 20
"""The largest configuration file dlaudit reads: 16 MiB."""


# -- what a path is -------------------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(path: PathLike) -> str:
    """``path`` as text that can be printed: bytes that are not UTF-8 (kept by Python as surrogates) and control
    characters (a name can hold a terminal escape sequence) as ``\\xNN``."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _link_note(path: Path) -> str:
    """``" (a symbolic link to TARGET)"`` when ``path`` is a symlink, else ``""``."""
    with contextlib.suppress(OSError):
        if path.is_symlink():
            return f" (a symbolic link to {shown(os.readlink(path))})"
    return ""


def _stat(path: Path, label: str, error: type[DlauditError]) -> os.stat_result | None:
    """``os.stat(path)`` (symlinks followed); None when nothing is there; a loop or an unreadable path raises ``error``."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise error(f"{label} {shown(path)} is a symbolic link loop; point it at a file") from None
        if err.errno == errno.ENOTDIR:
            return None
        raise error(f"{label} {shown(path)} cannot be read ({err.strerror or err})") from None


def _utf8(path: PathLike, label: str, error: type[DlauditError]) -> None:
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            f"{label} {shown(path)} has a name that is not valid UTF-8; rename it (reports record paths as UTF-8 text)"
        ) from None


def check_input(path: PathLike, label: str, *, error: type[DlauditError] = ConfigError, empty_ok: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a regular file that can be read, else ``error`` saying what it is.

    ``label`` names the input in the message (``"card file"``, ``"--baseline"``). A FIFO, a device, a socket
    or a directory is refused without being opened; so are a symlink loop, a symlink to nothing and (unless
    ``empty_ok``) an empty file.
    """
    p = Path(path)
    _utf8(p, label, error)
    st = _stat(p, label, error)
    if st is None:
        if os.path.islink(p):
            raise error(
                f"{label} {shown(p)} is a symbolic link to {shown(os.readlink(p))}, which does not exist; fix the link"
            )
        raise error(f"{label} {shown(p)} does not exist; check the path")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{label} {shown(p)}{_link_note(p)} is {_kind(st.st_mode)}, not a regular file; give a file")
    if st.st_size == 0 and not empty_ok:
        raise error(f"{label} {shown(p)} is empty (0 bytes); it was probably not written completely")
    return p


def read_input(
    path: PathLike,
    label: str,
    *,
    limit: int | None,
    error: type[DlauditError] = ConfigError,
    head: int | None = None,
) -> bytes:
    """The bytes of the regular file ``path`` (its first ``head`` bytes when given), or ``error`` saying what is wrong.

    The file is opened without blocking and checked again once open (a path swapped for a FIFO between the
    check and the open cannot hang the run); a file of more than ``limit`` bytes is refused, and no more
    than ``limit + 1`` bytes are ever read (a file growing while it is read cannot exhaust memory).
    """
    p = check_input(path, label, error=error, empty_ok=True)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise error(f"{label} {shown(p)} cannot be read ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{label} {shown(p)} is {_kind(st.st_mode)}, not a regular file; give a file")
        if limit is not None and st.st_size > limit:
            raise error(
                f"{label} {shown(p)} is {st.st_size:,} bytes, more than such a file can be ({limit:,}); check the path"
            )
        want = head if head is not None else (limit + 1 if limit is not None else -1)
        data = fh.read(want)
    if head is None and limit is not None and len(data) > limit:
        raise error(f"{label} {shown(p)} grew past {limit:,} bytes while it was read; check the path")
    return data


# -- the inputs of a run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Folder:
    """A folder whose files a run reads (a data folder, a checkpoint folder).

    An output may be a new file in it, never one of its existing files.
    """

    path: PathLike


NAMED_FILES = {"adult": ("adult.data", "adult.test"), "german": ("german.data",)}
"""The files a named tabular dataset reads in its data folder (default: the current directory)."""
NAMED_FOLDERS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "cifar-10", "cifar-100")
"""Named datasets read from a folder of files (default ``~/.cache/dlaudit``)."""
DATA_SUFFIXES = (".npz", ".csv")
FOLDER_PREFIX = "folder:"


def _data_inputs(label: str, spec: object, data_dir: PathLike | None) -> dict[str, PathLike | Folder]:
    """What reading the data ``spec`` (a name, ``folder:DIR`` or a file) with ``data_dir`` reads."""
    if spec is None or not isinstance(spec, (str, os.PathLike)):
        return {}
    text = os.fspath(spec).strip()
    key = text.lower()
    if key.startswith(FOLDER_PREFIX):
        return {f"{label} folder": Folder(Path(text[len(FOLDER_PREFIX) :]).expanduser())}
    if Path(text).suffix.lower() in DATA_SUFFIXES:
        return {label: text}
    if key in NAMED_FILES:
        root = Path(data_dir or ".")
        return {f"{label} {key} file {name}": root / name for name in NAMED_FILES[key]}
    if key in NAMED_FOLDERS:
        return {f"{label} {key} folder": Folder(Path(data_dir) if data_dir else Path.home() / ".cache" / "dlaudit")}
    return {}


def run_inputs(
    model: PathLike | None = None,
    *,
    card_file: PathLike | None = None,
    data: object = None,
    data_dir: PathLike | None = None,
    card: Any = None,
    configs: Mapping[str, PathLike | None] | None = None,
    baselines: Mapping[str, PathLike | None] | None = None,
    checkpoint: PathLike | None = None,
) -> dict[str, PathLike | Folder]:
    """Every input a run reads, by what it is (for :func:`check_paths`).

    Parameters
    ----------
    model, card_file
        The model file (its sidecar cards come along in :func:`check_paths`) and ``--card``.
    data, data_dir
        ``--data`` (a name, ``folder:DIR`` or a file) and ``--data-dir``.
    card
        The loaded model's :class:`~dlaudit.card.ModelCard`: the dataset it names (and that dataset's folder),
        read when ``--data`` is left out or names the same dataset.
    configs, baselines
        Configuration files read (``--config``, or the implicit ``./pyproject.toml``) and baseline reports
        (``--baseline`` and one named in a configuration), by label.
    checkpoint
        A ``--checkpoint`` folder of finished shards.
    """
    out: dict[str, PathLike | Folder] = {}
    if model is not None:
        out["MODEL"] = Folder(model) if Path(model).is_dir() else model  # a Hugging Face folder: none of its files
    if card_file is not None:
        out["--card"] = card_file
    out.update(_data_inputs("--data", data, data_dir))
    if card is not None and getattr(card, "dataset", None):
        where = data_dir or getattr(card, "data_dir", None)
        out.update(_data_inputs("the dataset on the model's card", card.dataset, where))
    for group in (configs or {}, baselines or {}):
        out.update({label: p for label, p in group.items() if p is not None})
    if checkpoint is not None:
        out["--checkpoint"] = Folder(checkpoint)
    return out


# -- outputs --------------------------------------------------------------------------------------


def sidecar_paths(path: PathLike) -> list[Path]:
    """Where a foreign model's card may lie: ``model.card.json``, then ``model.pt.card.json``."""
    path = Path(path)
    return [path.with_suffix(".card.json"), path.with_name(path.name + ".card.json")]


def method_outputs(output: PathLike, methods: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Where each mitigated model is written: ``output`` itself for one method, else ``<stem>-<method><suffix>``."""
    path = Path(output)
    if len(methods) == 1:
        return {methods[0]: str(path)}
    return {m: str(path.with_name(f"{path.stem}-{m}{path.suffix or '.pt'}")) for m in methods}


def resolved(path: PathLike, label: str = "path") -> Path:
    """The absolute path with every symlink followed (the file that would really be read or written).

    A symlink loop is a :class:`ConfigError` naming ``label``.
    """
    try:
        return Path(path).expanduser().resolve(strict=False)
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError on a loop, later versions OSError
        raise ConfigError(f"{label} {shown(path)} is a symbolic link loop; point it at a file") from None


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    return False


def _inside(target: Path, folder: Path) -> bool:
    """Whether ``target`` is an existing file somewhere under ``folder``."""
    return target != folder and folder in target.parents and target.exists()


def check_output(path: PathLike, label: str = "output") -> Path:
    """The file an output at ``path`` replaces (symlinks followed); refused when it exists and is not a regular file.

    Writing replaces the file by rename, so a FIFO, a device or a socket there would be replaced by a regular
    file: dlaudit writes outputs only to regular files or new paths.
    """
    _utf8(path, label, ConfigError)
    target = resolved(path, label)
    st = _stat(target, label, ConfigError)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{label} {shown(path)} is a directory; give a file path")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"{label} {shown(path)}{_link_note(Path(path))} is {_kind(st.st_mode)}, not a regular file; "
            "dlaudit writes only to regular files or new paths; choose another path"
        )
    return target


def _writable(label: str, path: Path) -> None:
    target = check_output(path, label)
    parent = target.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ConfigError(f"{label} {shown(path)} cannot be written: {shown(ancestor)} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".dlaudit-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(
            f"{label} {shown(path)} cannot be written ({err.strerror or err}); choose a folder you can write to"
        ) from None


def check_paths(
    inputs: Mapping[str, PathLike | Folder | None],
    outputs: Mapping[str, PathLike | None],
) -> None:
    """Refuse, before any work, an output that is one of the inputs (after following symlinks) or one of the
    files of an input :class:`Folder`, two outputs that are the same file, an existing output that is not a
    regular file, and an output location that cannot be written.

    ``inputs`` and ``outputs`` map an option name (``"MODEL"``, ``"--json"``) to a path (see
    :func:`run_inputs`); None entries are ignored. A model input brings its sidecar cards along.
    """
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    for label, path in inputs.items():
        if path is None:
            continue
        if isinstance(path, Folder):
            folders[label] = resolved(path.path, label)
            continue
        _utf8(path, label, ConfigError)
        files[label] = resolved(path, label)
        if label == "MODEL":
            for side in sidecar_paths(path):
                files[f"the model's card {side.name}"] = resolved(side, label)
    outs = {label: Path(p) for label, p in outputs.items() if p is not None}
    seen: dict[Path, str] = {}
    for label, path in outs.items():
        target = check_output(path, label)
        for in_label, in_path in files.items():
            if _same(target, in_path):
                raise ConfigError(
                    f"{label} {shown(path)} is {in_label} ({shown(in_path)}); writing it would destroy an input; "
                    "choose another path"
                )
        for in_label, folder in folders.items():
            if _inside(target, folder):
                raise ConfigError(
                    f"{label} {shown(path)} is one of the files of {in_label} {shown(folder)}; writing it would "
                    "destroy an input; choose another path (a new file there is fine)"
                )
        for other_target, other_label in seen.items():
            if _same(target, other_target):
                raise ConfigError(
                    f"{label} and {other_label} are the same file ({shown(target)}); give each output its own path"
                )
        seen[target] = label
    for label, path in outs.items():
        _writable(label, path)


# -- atomic writes --------------------------------------------------------------------------------

_MARKER = "user.dlaudit.writer"
"""The extended attribute on every temporary file dlaudit writes: ``BOOT PIDNS PID`` of its writer."""


def _machine() -> str | None:
    """``BOOT PIDNS``: this boot of this machine and this PID namespace (a PID means something only within both)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot} {pidns}"


def _temp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.dlaudit-(\d+)\.[A-Za-z0-9_]+\.tmp")


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path``, then rename it over ``path``.

    A crash never leaves a half-written file over an earlier one. When ``path`` is a symbolic link, the file
    it points to is replaced and the link stays. An existing ``path`` that is not a regular file (a FIFO, a
    device) is refused: renaming over it would replace it. The temporary file is
    ``.<name>.dlaudit-<pid>.<random>.tmp``, locked while it is written and marked with its writer (an
    extended attribute); one left by a writer that was killed (``kill -9``) is removed by the next write to
    the same path, and nothing else is: not a file that merely has such a name, not one another live writer
    (even in another container) holds.
    """
    target = check_output(path, "output")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.dlaudit-{os.getpid()}.", suffix=".tmp", dir=target.parent)
    done = owned = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        machine = _machine()
        if machine is not None:
            with contextlib.suppress(OSError):  # a file system without extended attributes: never swept
                os.setxattr(fd, _MARKER, f"{machine} {os.getpid()}".encode())
        umask = os.umask(0)
        os.umask(umask)
        existing = _stat(target, "output", ConfigError)
        os.fchmod(fd, existing.st_mode & 0o7777 if existing is not None else 0o666 & ~umask)
        fh = os.fdopen(fd, mode)
        owned = True  # the file object closes the descriptor from here on
        with fh:
            yield fh
        os.replace(tmp, target)
        done = True
    finally:
        if not owned:
            os.close(fd)
        if not done:  # whatever went wrong (even Ctrl-C), the earlier file stays and no temp file is left
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _remove_stale_temps(path: Path) -> None:
    """Delete the temporary files beside ``path`` that a dlaudit writer of this machine left when it was killed.

    A candidate must have dlaudit's name, be a regular file of this user, carry dlaudit's marker naming a
    writer of this boot and PID namespace whose process is gone, and not be locked by anyone.
    """
    machine = _machine()
    if machine is None:
        return
    pattern = _temp_pattern(path.name)
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            found = pattern.fullmatch(entry.name)
            if found is None:
                continue
            with contextlib.suppress(OSError):
                _remove_if_stale(Path(entry.path), int(found.group(1)), machine)


def _remove_if_stale(path: Path, pid: int, machine: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            return
        if os.getxattr(fd, _MARKER).decode(errors="replace") != f"{machine} {pid}" or _alive(pid):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a live writer holds it
        if os.path.samestat(st, os.lstat(path)):
            os.unlink(path)
            log.info("removed %s, left by a dlaudit writer that was killed", path)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive, not ours to judge
        return True
    return True
