"""Progress a person can see: a bar on a terminal, plain lines elsewhere (CI logs, ``| tee``, notebooks).

Library code reports progress as ``progress(stage, done, total)`` (:data:`dlaudit.utils.ProgressFn`);
:class:`ProgressPrinter` turns those calls into output on stderr. Stages named ``check:<section>``
open and close a report section; any other stage (``robustness:pgd_linf``, ``train``...) is a step
within the current section. A progress callback may also have an ``announce(text)`` method:
:func:`dlaudit.audit` calls it with a time estimate before an expensive section starts.

Standard library only, so the CLI stays light to import.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .terminal import printable

__all__ = ["ProgressPrinter", "DEFAULT_INTERVAL", "format_seconds"]

DEFAULT_INTERVAL = 10.0
"""Seconds between two plain progress lines (``DLAUDIT_PROGRESS_INTERVAL`` changes it)."""


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _interval_from_env() -> float:
    text = os.environ.get("DLAUDIT_PROGRESS_INTERVAL", "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


class ProgressPrinter:
    """Progress on ``stream`` (stderr): a one-line bar on a terminal; without one, a plain line at most every
    ``interval`` seconds (section, step, count, elapsed, estimated remaining), plus a line when a section
    starts (with its time estimate, when known) and ends; nothing at all with ``quiet``.

    Parameters
    ----------
    quiet
        Print nothing.
    stream
        Where to print (default: ``sys.stderr`` at call time).
    tty
        Whether ``stream`` is a terminal (default: ask it).
    interval
        Seconds between plain lines (default :data:`DEFAULT_INTERVAL`, or ``DLAUDIT_PROGRESS_INTERVAL``).
    clock
        A monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        quiet: bool = False,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        is_tty = tty if tty is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = "off" if quiet else "bar" if is_tty else "lines"
        self.interval = _interval_from_env() if interval is None else float(interval)
        self.clock = clock
        self.section = ""
        self.section_started = 0.0
        self.started: dict[str, float] = {}
        self.done: dict[str, int] = {}
        self.last_line = -float("inf")
        self.last_bar = -float("inf")
        self.last_stage = ""

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def _write(self, text: str, *, end: str = "\n") -> None:
        try:
            self.stream.write(text + end)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the work
            self.mode = "off"

    def announce(self, text: str) -> None:
        """A line of its own (e.g. a time estimate before an expensive section)."""
        if self.mode == "off":
            return
        if self.mode == "bar":
            self._write("\r" + " " * 78 + "\r", end="")
        self._write(f"dlaudit: {printable(text)}")

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.mode == "off":
            return
        stage = printable(stage)  # a stage can name a user's feature or class: no control characters reach the terminal
        now = self.clock()
        if stage.startswith("check:"):
            self._section(stage.split(":", 1)[1], done >= total, now)
            return
        restarted = done < self.done.get(stage, 0)
        if stage not in self.started or restarted or (done == 0 and self.last_stage != stage):
            self.started[stage] = now  # a step seen for the first time in this section, or starting over
        self.done[stage] = done
        if self.mode == "bar":
            self._bar(stage, done, total, now)
        elif (
            stage != self.last_stage or restarted or now - self.last_line >= self.interval
        ):  # each step once, then steadily
            self.last_line = now
            self.last_stage = stage
            self._write("dlaudit: " + self.line(stage, done, total, now))

    def line(self, stage: str, done: int, total: int, now: float | None = None) -> str:
        """``"[robustness] pgd_linf 3/5 (60%) · 12 s elapsed · about 8.0 s left"``."""
        now = self.clock() if now is None else now
        section, _, step = stage.partition(":") if ":" in stage else (self.section, "", stage)
        where = f"[{self.section or section}] {step or section}" if (self.section or section) else stage
        elapsed = now - self.started.get(stage, now)
        parts = [f"{where} {done}/{total}" + (f" ({done / total:.0%})" if total else "")]
        parts.append(f"{format_seconds(elapsed)} elapsed")
        if 0 < done < total and elapsed > 0:
            parts.append(f"about {format_seconds(elapsed * (total - done) / done)} left")
        if self.section:
            parts.append(f"section {format_seconds(now - self.section_started)}")
        return " · ".join(parts)

    def _section(self, name: str, finished: bool, now: float) -> None:
        if not finished:
            self.section, self.section_started = name, now
            self.last_stage = ""
            self.started.clear()
            self.done.clear()
            if self.mode == "lines":
                self._write(f"dlaudit: [{name}] started")
            return
        took = now - self.section_started if self.section == name else 0.0
        if self.mode == "bar":
            self._write("\r" + " " * 78 + "\r", end="")
        if self.mode == "lines" or took >= 1.0:
            self._write(f"dlaudit: [{name}] done in {format_seconds(took)}")
        self.section = ""
        self.last_line = -float("inf")

    def _bar(self, stage: str, done: int, total: int, now: float) -> None:
        if done < total and now - self.last_bar < 0.1:
            return
        self.last_bar = now
        width = 24
        frac = done / total if total else 1.0
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        elapsed = now - self.started[stage]
        left = f" ~{format_seconds(elapsed * (total - done) / done)} left" if 0 < done < total else ""
        self._write(f"\r{stage:<24.24} [{bar}] {done}/{total} {format_seconds(elapsed):>8}{left:<16}", end="")
        if done >= total:
            self._write("")
