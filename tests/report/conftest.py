"""Fixtures of the report tests: hand-built reports (see report_samples.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dlaudit.report import Report

from .report_samples import build_report


@pytest.fixture
def make_report() -> Callable[..., Report]:
    return build_report


@pytest.fixture
def report() -> Report:
    return build_report()
