"""Crafted paths: no output overwrites an input of any kind or replaces a special file, and an input that
is not a regular file (a FIFO, a device, a link loop, a giant file) gets one line saying what it is.

The table works as in ``test_corpus.py``: each builder writes what it needs into a folder and returns the
command line; the expected exit code and a fragment of the one-line message go with it. Before and after
the run every entry of the folder is recorded by kind (a FIFO stays a FIFO, a device a device), and every
regular file by its bytes and modification time: nothing the user had may change. FIFOs are never opened
by the tests, and every run is bounded by an alarm, so a regression that opens one fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import dlaudit
from dlaudit.cli import cli
from dlaudit.errors import ConfigError
from dlaudit.paths import atomic_write
from tests.hostile.test_corpus import _npz, _torchscript

ROOT = os.geteuid() == 0
FAST = ["--checks", "performance"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small digits MLP checkpoint (trained once for the module)."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    dlaudit.save_model(dlaudit.train("mlp", "digits", epochs=1, seed=0, device="cpu"), path)
    return path


# -- builders: folder, model -> argv -----------------------------------------------------------------

Builder = Callable[[Path, Path], list[str]]


def _images(d: Path) -> Path:
    for cls in ("a", "b"):
        (d / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=40 * i).save(d / "imgs" / cls / f"{i}.png")
    return d / "imgs"


def _with_dataset(m: Path, dataset: Path) -> Path:
    """``m`` re-saved with a card naming ``dataset`` as the data it was trained on."""
    bundle = dlaudit.load_model(m, device="cpu")
    bundle.card.dataset = str(dataset.resolve())
    out = m.with_name("trained-on-npz.pt")
    dlaudit.save_model(bundle, out)
    return out


def _big(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes (no disk space used)."""
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


def json_is_an_image_of_the_folder_data(d: Path, m: Path) -> list[str]:
    return ["info", str(m), "--data", f"folder:{_images(d)}", "--json", str(d / "imgs" / "a" / "0.png")]


def json_is_the_npz_on_the_models_card(d: Path, m: Path) -> list[str]:
    data = _npz(d, x=np.zeros((40, 8, 8), np.uint8), y=np.arange(40) % 10)
    return ["report", str(_with_dataset(m, data)), *FAST, "-o", str(d / "r.html"), "--json", str(data)]


def explain_npz_is_the_npz_on_the_models_card(d: Path, m: Path) -> list[str]:
    (d / "out").mkdir()
    data = _npz(d / "out", "attributions.npz", x=np.zeros((40, 8, 8), np.uint8), y=np.arange(40) % 10)
    return ["explain", str(_with_dataset(m, data)), "-o", str(d / "out"), "--method", "saliency", "--n", "2"]


def markdown_is_the_default_config(d: Path, m: Path) -> list[str]:
    (d / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    return ["report", str(m), *FAST, "-o", str(d / "r.html"), "--markdown", "pyproject.toml"]


def json_is_the_baseline_named_in_the_config(d: Path, m: Path) -> list[str]:
    (d / "base.json").write_text("{}")
    (d / "c.toml").write_text('[tool.dlaudit]\nbaseline = "base.json"\n')
    return ["report", str(m), *FAST, "--config", str(d / "c.toml"), "-o", str(d / "r.html"), "--json", "base.json"]


def junit_is_the_baseline(d: Path, m: Path) -> list[str]:
    (d / "base.json").write_text("{}")
    return ["report", str(m), *FAST, "--baseline", "base.json", "-o", str(d / "r.html"), "--junit", "base.json"]


def json_is_a_file_of_the_checkpoint_folder(d: Path, m: Path) -> list[str]:
    (d / "ckpt").mkdir()
    (d / "ckpt" / "shard-0.pt").write_bytes(b"finished work")
    return ["attack", str(m), "--checkpoint", str(d / "ckpt"), "--json", str(d / "ckpt" / "shard-0.pt")]


def json_is_a_file_of_the_data_dir(d: Path, m: Path) -> list[str]:
    (d / "uci").mkdir()
    (d / "uci" / "adult.data").write_text("39, State-gov\n")
    return ["train", "mlp", "--data", "adult", "--data-dir", "uci", "-o", "a.pt", "--json", "uci/adult.data"]


def json_is_the_sidecar_card(d: Path, m: Path) -> list[str]:
    model = _torchscript(d, {"input_shape": [1, 8, 8], "num_classes": 10})
    return ["info", str(model), "--data", "digits", "--json", str(model.with_suffix(".card.json"))]


def json_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "pipe")
    return ["info", str(m), "--json", str(d / "pipe")]


def output_is_a_char_device(d: Path, m: Path) -> list[str]:
    os.mknod(d / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
    return ["report", str(m), *FAST, "-o", str(d / "null")]


def json_is_a_link_to_a_char_device(d: Path, m: Path) -> list[str]:
    os.mknod(d / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (d / "latest.json").symlink_to(d / "null")
    return ["info", str(m), "--json", str(d / "latest.json")]


def json_is_a_socket(d: Path, m: Path) -> list[str]:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "s.json"))
    sock.close()
    return ["info", str(m), "--json", str(d / "s.json")]


def json_is_a_symlink_loop(d: Path, m: Path) -> list[str]:
    (d / "a.json").symlink_to(d / "b.json")
    (d / "b.json").symlink_to(d / "a.json")
    return ["info", str(m), "--json", str(d / "a.json")]


def json_name_not_utf8(d: Path, m: Path) -> list[str]:
    return ["info", str(m), "--json", os.fsdecode(os.fsencode(d) + b"/r\xff.json")]


def model_is_a_symlink_loop(d: Path, m: Path) -> list[str]:
    (d / "a.pt").symlink_to(d / "b.pt")
    (d / "b.pt").symlink_to(d / "a.pt")
    return ["info", str(d / "a.pt")]


def model_name_not_utf8(d: Path, m: Path) -> list[str]:
    path = os.fsencode(d) + b"/m\xff.pt"
    with open(path, "wb") as fh:
        fh.write(m.read_bytes())
    return ["report", os.fsdecode(path), *FAST, "-o", str(d / "r.html")]


def model_name_with_a_terminal_escape(d: Path, m: Path) -> list[str]:
    return ["info", str(d / "m\x1b]0;title\x07.pt")]


def model_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "pipe.pt")
    return ["info", str(d / "pipe.pt")]


def model_is_a_link_to_dev_zero(d: Path, m: Path) -> list[str]:
    (d / "zero.pt").symlink_to("/dev/zero")
    return ["info", str(d / "zero.pt")]


def card_is_dev_zero(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--card", "/dev/zero", "--data", "digits"]


def card_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "card.json")
    return ["info", str(_torchscript(d)), "--card", str(d / "card.json"), "--data", "digits"]


def card_is_a_link_to_nothing(d: Path, m: Path) -> list[str]:
    (d / "card.json").symlink_to(d / "gone.json")
    return ["info", str(_torchscript(d)), "--card", str(d / "card.json"), "--data", "digits"]


def card_is_a_giant_file(d: Path, m: Path) -> list[str]:
    return ["info", str(_torchscript(d)), "--card", str(_big(d / "card.json", 300 << 20)), "--data", "digits"]


def sidecar_card_is_a_fifo(d: Path, m: Path) -> list[str]:
    model = _torchscript(d)
    os.mkfifo(model.with_suffix(".card.json"))
    return ["info", str(model), "--data", "digits"]


def sidecar_card_is_a_link_to_dev_zero(d: Path, m: Path) -> list[str]:
    model = _torchscript(d)
    model.with_suffix(".card.json").symlink_to("/dev/zero")
    return ["info", str(model), "--data", "digits"]


def baseline_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "old.json")
    return ["report", str(m), *FAST, "--baseline", str(d / "old.json"), "-o", str(d / "r.html")]


def baseline_is_dev_zero(d: Path, m: Path) -> list[str]:
    return ["report", str(m), *FAST, "--baseline", "/dev/zero", "-o", str(d / "r.html")]


def baseline_is_a_giant_file(d: Path, m: Path) -> list[str]:
    return ["report", str(m), *FAST, "--baseline", str(_big(d / "old.json", 300 << 20)), "-o", str(d / "r.html")]


def config_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "c.toml")
    return ["report", str(m), *FAST, "--config", str(d / "c.toml"), "-o", str(d / "r.html")]


def config_is_a_giant_file(d: Path, m: Path) -> list[str]:
    return ["report", str(m), *FAST, "--config", str(_big(d / "c.toml", 20 << 20)), "-o", str(d / "r.html")]


def config_is_a_link_to_dev_zero(d: Path, m: Path) -> list[str]:
    (d / "c.toml").symlink_to("/dev/zero")
    return ["report", str(m), *FAST, "--config", str(d / "c.toml"), "-o", str(d / "r.html")]


def data_npz_is_a_link_to_dev_zero(d: Path, m: Path) -> list[str]:
    (d / "d.npz").symlink_to("/dev/zero")
    return ["info", str(m), "--data", str(d / "d.npz")]


def default_config_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "pyproject.toml")
    return ["report", str(m), *FAST, "-o", str(d / "r.html")]


def data_npz_is_a_fifo(d: Path, m: Path) -> list[str]:
    os.mkfifo(d / "d.npz")
    return ["info", str(m), "--data", str(d / "d.npz")]


def data_csv_is_a_link_to_dev_zero(d: Path, m: Path) -> list[str]:
    (d / "t.csv").symlink_to("/dev/zero")
    return ["train", "mlp", "--data", str(d / "t.csv"), "--target", "y", "-o", str(d / "t.pt")]


def data_dir_file_is_a_fifo(d: Path, m: Path) -> list[str]:
    (d / "uci").mkdir()
    os.mkfifo(d / "uci" / "german.data")
    return ["train", "mlp", "--data", "german", "--data-dir", str(d / "uci"), "-o", str(d / "g.pt")]


CASES: dict[str, tuple[Builder, int, str]] = {
    "--json an image of the folder: data": (json_is_an_image_of_the_folder_data, 2, "one of the files of --data"),
    "--json the .npz on the model's card": (json_is_the_npz_on_the_models_card, 2, "the dataset on the model's card"),
    "explain -o over the .npz on the model's card": (
        explain_npz_is_the_npz_on_the_models_card,
        2,
        "is the dataset on the model's card",
    ),
    "--markdown ./pyproject.toml (the default config)": (markdown_is_the_default_config, 2, "the default config"),
    "--json the baseline named in --config": (json_is_the_baseline_named_in_the_config, 2, "the baseline named in"),
    "--junit the --baseline": (junit_is_the_baseline, 2, "is --baseline"),
    "--json a file of the --checkpoint folder": (json_is_a_file_of_the_checkpoint_folder, 2, "of --checkpoint"),
    "--json a file of the --data-dir": (json_is_a_file_of_the_data_dir, 2, "adult file adult.data"),
    "--json the sidecar card": (json_is_the_sidecar_card, 2, "the model's card ts.card.json"),
    "--json a FIFO": (json_is_a_fifo, 2, "is a FIFO (named pipe), not a regular file"),
    "--json a socket": (json_is_a_socket, 2, "is a socket, not a regular file"),
    "--json a symlink loop": (json_is_a_symlink_loop, 2, "is a symbolic link loop"),
    "--json name not UTF-8": (json_name_not_utf8, 2, "r\\xff.json has a name that is not valid UTF-8"),
    "MODEL a symlink loop": (model_is_a_symlink_loop, 2, "is a symbolic link loop"),
    "MODEL name not UTF-8 (before the audit)": (model_name_not_utf8, 2, "m\\xff.pt has a name that is not valid"),
    "MODEL name with a terminal escape": (
        model_name_with_a_terminal_escape,
        2,
        "m\\x1b]0;title\\x07.pt does not exist",
    ),
    "MODEL a FIFO": (model_is_a_fifo, 2, "pipe.pt is a FIFO (named pipe), not a regular file"),
    "MODEL a symlink to /dev/zero": (model_is_a_link_to_dev_zero, 2, "(a symbolic link to /dev/zero) is a character"),
    "--card /dev/zero": (card_is_dev_zero, 2, "card file /dev/zero is a character device, not a regular file"),
    "--card a FIFO": (card_is_a_fifo, 2, "card.json is a FIFO (named pipe), not a regular file"),
    "--card a symlink to nothing": (card_is_a_link_to_nothing, 2, "gone.json, which does not exist"),
    "--card of 300 MB": (card_is_a_giant_file, 2, "more than such a file can be"),
    "sidecar card a FIFO": (sidecar_card_is_a_fifo, 2, "ts.card.json is a FIFO (named pipe)"),
    "sidecar card a symlink to /dev/zero": (sidecar_card_is_a_link_to_dev_zero, 2, "is a character device"),
    "--baseline a FIFO": (baseline_is_a_fifo, 2, "old.json is a FIFO (named pipe), not a regular file"),
    "--baseline /dev/zero": (baseline_is_dev_zero, 2, "/dev/zero is a character device, not a regular file"),
    "--baseline of 300 MB": (baseline_is_a_giant_file, 2, "more than such a file can be"),
    "--config a FIFO": (config_is_a_fifo, 2, "c.toml is a FIFO (named pipe), not a regular file"),
    "--config of 20 MB": (config_is_a_giant_file, 2, "more than such a file can be"),
    "--config a symlink to /dev/zero (not 'does not exist')": (
        config_is_a_link_to_dev_zero,
        2,
        "c.toml (a symbolic link to /dev/zero) is a character device",
    ),
    "--data .npz a symlink to /dev/zero": (data_npz_is_a_link_to_dev_zero, 2, "(a symbolic link to /dev/zero) is a"),
    "./pyproject.toml a FIFO": (default_config_is_a_fifo, 2, "the default config pyproject.toml is a FIFO"),
    "--data .npz a FIFO": (data_npz_is_a_fifo, 2, "d.npz is a FIFO (named pipe), not a regular file"),
    "--data .csv a symlink to /dev/zero": (data_csv_is_a_link_to_dev_zero, 2, "is a character device"),
    "german.data in --data-dir a FIFO": (data_dir_file_is_a_fifo, 2, "german.data is a FIFO (named pipe)"),
    **(
        {
            "-o a character device (mknod)": (output_is_a_char_device, 2, "is a character device, not a regular file"),
            "--json a symlink to a character device": (json_is_a_link_to_a_char_device, 2, "is a character device"),
        }
        if ROOT
        else {}
    ),
}


def _snapshot(folder: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``folder`` by kind; regular files with their digest and mtime, links with their target.

    Nothing is opened but regular files (a FIFO is never read).
    """
    out: dict[str, tuple[object, ...]] = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        key = str(p.relative_to(folder))
        if stat.S_ISLNK(st.st_mode):
            out[key] = ("link", os.readlink(p))
        elif stat.S_ISREG(st.st_mode):
            out[key] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size)
        else:
            out[key] = (stat.S_IFMT(st.st_mode), st.st_rdev)
    return out


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a FIFO opened by mistake blocks until a writer comes)."""

    def stop(signum: int, frame: object) -> None:
        raise TimeoutError(f"the run did not finish in {seconds} s (a FIFO opened?)")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_path(case: str, tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build, code, fragment = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    model = work / "m.pt"
    model.write_bytes(model_file.read_bytes())
    argv = build(work, model)
    before = _snapshot(work)
    with _alarm(120):
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    out = result.output.strip()
    assert result.exit_code == code, (argv, out)
    assert "Traceback" not in out
    assert fragment in out, (argv, out)
    assert out.startswith("dlaudit: error:") and len(out.splitlines()) == 1, out
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in out), "a control character reached the terminal"
    after = _snapshot(work)
    assert {k: v for k, v in after.items() if k in before} == before, "an input was changed"
    assert not [k for k in after if k.endswith(".tmp")], "a temporary file was left behind"


def test_a_new_file_in_a_data_folder_is_fine(tmp_path: Path, model_file: Path) -> None:
    imgs = _images(tmp_path)
    res = CliRunner().invoke(
        cli, ["info", str(model_file), "--data", f"folder:{imgs}", "--json", str(imgs / "a" / "report.json")]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((imgs / "a" / "report.json").read_text())["data"]["name"] == "imgs"


# -- the library's writes ----------------------------------------------------------------------------


def test_atomic_write_refuses_a_fifo_and_leaves_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(ConfigError, match="is a FIFO"):
        dlaudit.api.save_json(tmp_path / "pipe.json", {"a": 1})
    assert stat.S_ISFIFO((tmp_path / "pipe.json").lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.json"]


def test_a_failed_write_leaves_the_earlier_file_and_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("earlier")
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "r.json", "w") as fh:
        fh.write("half")
        raise RuntimeError("renderer crashed")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"] and (tmp_path / "r.json").read_text() == "earlier"


_KILLED_WRITER = """
import os, signal, sys
from dlaudit.paths import atomic_write
with atomic_write(sys.argv[1], "w") as fh:
    fh.write("half")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_writer_temp(target: Path) -> Path:
    """A temporary file left beside ``target`` by a dlaudit writer killed with SIGKILL."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], env=env, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL
    (left,) = [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    return left


def _has_xattrs(folder: Path) -> bool:
    probe = folder / "xattr-probe"
    probe.write_text("")
    try:
        os.setxattr(probe, "user.dlaudit.probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def test_the_sweep_removes_a_killed_writers_temp_file_and_nothing_else(tmp_path: Path) -> None:
    if not _has_xattrs(tmp_path):
        pytest.skip("the file system holds no extended attributes: dlaudit leaves leftover temp files alone")
    stale = _killed_writer_temp(tmp_path / "r.json")
    users = [tmp_path / ".r.json.999999999.abc.tmp", tmp_path / ".r.json.dlaudit-999999999.abc.tmp"]
    for p in users:  # files that merely look like temp files (a dead pid, dlaudit's name) but carry no marker
        p.write_text("mine")
    with atomic_write(tmp_path / "r.json", "w") as fh:
        fh.write("{}")
    assert not stale.exists(), "a killed writer's temp file was left"
    assert all(p.read_text() == "mine" for p in users), "a user's file was deleted by its name"
    assert (tmp_path / "r.json").read_text() == "{}"


def test_the_sweep_leaves_a_temp_file_a_live_writer_holds(tmp_path: Path) -> None:
    """A writer in another PID namespace (a container sharing the folder) looks dead here: its lock says it is not."""
    import fcntl

    if not _has_xattrs(tmp_path):
        pytest.skip("the file system holds no extended attributes")
    held = _killed_writer_temp(tmp_path / "r.json")
    fd = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with atomic_write(tmp_path / "r.json", "w") as fh:
            fh.write("{}")
        assert held.exists(), "a temp file a live writer holds was deleted"
    finally:
        os.close(fd)
