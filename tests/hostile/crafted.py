"""Running a crafted command line through the CLI and checking that it changed nothing it read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from dlaudit.cli import cli


def digest(folder: Path) -> dict[str, str]:
    """Each regular file below ``folder`` (links left out) and its SHA-256."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_crafted(argv: list[str], work: Path, code: int, fragment: str) -> str:
    """Run ``argv`` in-process and return its output, stripped, once these hold: it exits ``code`` with
    ``fragment`` in the output and no traceback, every file already in ``work`` is unchanged, and no
    temporary file is left there."""
    before = digest(work)
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    out = result.output.strip()
    assert result.exit_code == code, (argv, out)
    assert "Traceback" not in out
    assert fragment in out, (argv, out)
    after = digest(work)
    assert {k: v for k, v in after.items() if k in before} == before, "an input was changed"
    assert not [k for k in after if k.endswith(".tmp")], "a temporary file was left behind"
    return out
