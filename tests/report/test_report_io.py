"""Saving: the format from the extension (or format=), atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlaudit import save_report
from dlaudit.errors import ConfigError
from dlaudit.report import Report, Table


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("r.html", "<!DOCTYPE html>"),
        ("r.HTM", "<!DOCTYPE html>"),
        ("r.json", "{"),
        ("r.md", "## "),
        ("r.markdown", "## "),
        ("r.xml", "<?xml"),
    ],
)
def test_format_from_the_extension(tmp_path: Path, report: Report, name: str, start: str) -> None:
    path = save_report(report, tmp_path / "sub" / name)
    assert path.read_text(encoding="utf-8").startswith(start)


def test_format_argument_wins_and_bad_ones_are_errors(tmp_path: Path, report: Report) -> None:
    save_report(report, tmp_path / "summary.txt", format="markdown")
    assert (tmp_path / "summary.txt").read_text(encoding="utf-8").startswith("## ")
    save_report(report, tmp_path / "data.out", format="json")
    assert json.loads((tmp_path / "data.out").read_text())["schema_version"] == 1
    with pytest.raises(ConfigError, match=r"cannot tell the report format from 'r.pdf'"):
        save_report(report, tmp_path / "r.pdf")
    with pytest.raises(ConfigError, match="unknown report format 'pdf'"):
        save_report(report, tmp_path / "r.html", format="pdf")


class _Exploding:
    """A table cell that breaks the renderer halfway through the page."""

    def __str__(self) -> str:
        raise RuntimeError("renderer crashed")


def test_a_crash_while_rendering_leaves_the_earlier_report_intact(tmp_path: Path, report: Report, make_report) -> None:
    target = tmp_path / "report.html"
    save_report(report, target)
    before = target.read_bytes()
    broken = make_report()
    broken.sections[2].tables.append(Table("boom", ["x"], [[_Exploding()]]))
    with pytest.raises(RuntimeError, match="renderer crashed"):
        save_report(broken, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


def test_html_is_written_as_utf8(tmp_path: Path, report: Report) -> None:
    html = save_report(report, tmp_path / "r.html").read_bytes()
    assert "✓".encode() in html and b'<meta charset="utf-8">' in html
