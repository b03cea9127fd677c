"""The README works when copied: every fenced shell and Python block runs, in order, in one folder.

Blocks run with ``DLAUDIT_SMALL=1`` (short training, fast audits: see ``dlaudit.api.small``) so the
whole README takes a couple of minutes, not the half hour its full settings would. Installation and
development commands (``pip install``, ``python -m venv``, ``pytest``, benchmarks) are not run; blocks
that need the UCI files in ``../shared/data`` are skipped with the reason when those are absent.
A command may exit 1 only where the README says it can (a ``--fail-on`` gate or a ``--baseline``).
About two and a half minutes on 2 CPU cores, most of it starting Python and importing torch once
per command.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared"
SHELL = ("bash", "sh", "shell", "console")
NOT_RUN = re.compile(r"^\s*(pip |pip3 |python3? -m venv\b|\. \S*activate|source \S*activate|pytest\b|python3? bench/)")
"""Installation, the test suite itself and benchmarks: what a README test must not run."""
MAY_FAIL = ("--fail-on", "--baseline")
TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced code block (``` lang ... ```) with its first line number and language."""
    out, lang, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^```\s*([\w+-]*)\s*$", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), number, []
        elif line.startswith("```") and lang is not None:
            out.append(Block(start, lang, "\n".join(body)))
            lang = None
        elif lang is not None:
            body.append(line)
    return out


def shell_commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, console output and install steps left out."""
    lines = block.text.splitlines()
    if block.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1].rstrip() + " " + line.strip()
        else:
            joined.append(line)
    commands = []
    for line in joined:
        code = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        kept = [part.strip() for part in code.split("&&") if part.strip() and not NOT_RUN.match(part)]
        if kept:
            commands.append(" && ".join(kept))
    return commands


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang in (*SHELL, "python")]


def test_the_readme_has_runnable_blocks() -> None:
    langs = {b.lang for b in BLOCKS}
    assert {"bash", "python", "console"} <= langs
    synopsis = [b for b in BLOCKS if "{cnn,mlp,numpy-mlp}" in b.text]
    assert not synopsis, "a usage synopsis is not a command: fence it as ```text"


_RAN: set[str] = set()
"""Commands already run in this folder: one the README repeats verbatim (``dlaudit demo``) runs once."""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One folder for the whole README (later blocks use the files earlier ones write), and the environment."""
    work = tmp_path_factory.mktemp("readme")
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "dlaudit"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m dlaudit "$@"\n')
    wrapper.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
        "DLAUDIT_SMALL": "1",
        "DLAUDIT_PROGRESS_INTERVAL": "1000",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return work, env


FILE_NAME = re.compile(r"[\w./-]+\.(?:pt2?|json|html|npz|csv|onnx|safetensors|md|xml|toml)\b")
"""A file a block names: what a skipped block would have written and a later one may read."""
_SKIPPED: dict[str, str] = {}
"""File name -> the id of the skipped block that names it (and so would have made it)."""


def _skip(block: Block, work: Path, reason: str) -> None:
    """Skip ``block``, remembering the files it names that do not exist, so blocks that need them skip too."""
    for name in FILE_NAME.findall(block.text):
        if not (work / name).exists():
            _SKIPPED.setdefault(name, block.id)
    pytest.skip(reason)


def _with_shared(block: Block, work: Path) -> str:
    """The block with ``../shared`` pointing at the project's shared folder; skipped when its data is absent,
    and skipped when it names a file that only a skipped block would have made."""
    for name in FILE_NAME.findall(block.text):
        if name in _SKIPPED and not (work / name).exists():
            _skip(block, work, f"{block.id} needs {name}, which the skipped block {_SKIPPED[name]} makes")
    if "../shared" not in block.text:
        return block.text
    if not (SHARED / "data" / "adult" / "adult.data").is_file():
        _skip(block, work, f"{block.id} needs the UCI files in {SHARED / 'data'}, which are absent")
    return block.text.replace("../shared", str(SHARED))


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    work, env = workdir
    text = _with_shared(block, work)
    if block.lang == "python":
        res = subprocess.run(
            [sys.executable, "-c", text], cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert res.returncode == 0, f"{block.id} failed:\n{text}\n--- stderr ---\n{res.stderr[-3000:]}"
        return
    for command in shell_commands(Block(block.line, block.lang, text)):
        if command in _RAN:
            continue
        _RAN.add(command)
        res = subprocess.run(
            ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        allowed = (0, 1) if any(flag in command for flag in MAY_FAIL) else (0,)
        assert res.returncode in allowed, (
            f"{block.id}: `{command}` exited {res.returncode}:\n{res.stdout[-2000:]}\n--- stderr ---\n{res.stderr[-3000:]}"
        )
        assert "Traceback" not in res.stderr, f"{block.id}: `{command}`:\n{res.stderr[-3000:]}"


def test_shell_commands_are_read_as_a_reader_types_them() -> None:
    block = Block(
        1,
        "bash",
        'pip install -e ".[test]" && dlaudit demo   # run the demo\n'
        "# a comment\n"
        "dlaudit report m.pt --json a.json \\\n    --fail-on 'x < 1'\n"
        "pytest\n",
    )
    assert shell_commands(block) == ["dlaudit demo", "dlaudit report m.pt --json a.json --fail-on 'x < 1'"]
    console = Block(1, "console", "$ dlaudit attack m.pt\nattack  eps\nclean   0\n")
    assert shell_commands(console) == ["dlaudit attack m.pt"]
