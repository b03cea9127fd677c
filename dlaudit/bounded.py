"""Work that Ctrl-C and ``--timeout`` can stop: run in a worker thread while the calling thread waits.

A model's forward pass runs in torch's C++ code; Python notices Ctrl-C only between
bytecodes of the thread that runs it, so a forward pass that never returns (a
TorchScript loop) would hold Ctrl-C for as long as it runs. Running the work in a
worker thread leaves the main thread free to notice Ctrl-C at once and to stop
waiting at a deadline. A worker that cannot be stopped is *abandoned*: the process
then ends without tearing it down (see :func:`abandoned` and :func:`exit_now`), since
a C++ thread torn down by the interpreter's shutdown aborts the process
("terminate called without an active exception", SIGABRT) instead of exiting.

Worker threads are named ``dlaudit-...``; :func:`dlaudit.analysis.run_analysis` runs each
analysis the same way.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import DlauditError

__all__ = ["call", "Timeout", "abandoned", "exit_now", "catch_interrupts", "interrupted", "WORKER_PREFIX", "POLL"]

T = TypeVar("T")

WORKER_PREFIX = "dlaudit-"
"""Names of the worker threads that run dlaudit's work."""

INTERRUPTED = 130
"""The exit code after Ctrl-C (128 + SIGINT)."""

POLL = 0.1
"""Seconds between the waiting thread's checks for Ctrl-C and the deadline."""


class Timeout(DlauditError):
    """Work ran past its ``--timeout`` and was abandoned."""


def call(fn: Callable[[], T], *, timeout: float | None, what: str, advice: str = "") -> T:
    """``fn()`` run in a worker thread; Ctrl-C in the waiting thread raises ``KeyboardInterrupt`` at once.

    Parameters
    ----------
    fn
        The work; what it raises is raised here, with its traceback.
    timeout
        Seconds to wait (None: no limit); past them :class:`Timeout` is raised and the
        worker is abandoned (it runs on as a daemon thread until the process ends).
    what
        The work in words, for the message (``"loading m.pt"``).
    advice
        What to do, appended to the message.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the waiting thread, which raises it
            outcome["error"] = err

    context = contextvars.copy_context()  # settings held in context variables travel with the work
    worker = threading.Thread(target=context.run, args=(work,), name=f"{WORKER_PREFIX}{what[:40]}", daemon=True)
    start = time.perf_counter()
    worker.start()
    while worker.is_alive():
        worker.join(POLL)
        if timeout is not None and worker.is_alive() and time.perf_counter() - start > timeout:
            raise Timeout(
                f"{what} took more than --timeout {timeout:g} s and was stopped" + (f"; {advice}" if advice else "")
            )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


_interrupts = {"count": 0}


def _on_interrupt(signum: int, frame: Any) -> None:
    _interrupts["count"] += 1
    raise KeyboardInterrupt


def catch_interrupts() -> None:
    """Count each Ctrl-C as it raises ``KeyboardInterrupt``, so that one raised where a library swallows it
    (a finalizer, a callback, an ``except BaseException``) still ends the run as interrupted.

    Only in the main thread, and only when SIGINT has Python's default handler (not where it is ignored,
    as in a background job, nor where an embedding program set its own).
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is (
        signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _on_interrupt)
        if sys.unraisablehook is not _quiet_unraisable:
            _hooks["unraisable"] = sys.unraisablehook
            sys.unraisablehook = _quiet_unraisable


_hooks: dict[str, Any] = {}


def _quiet_unraisable(unraisable: Any) -> None:
    """A Ctrl-C that lands in a weak reference's callback or a finalizer is swallowed there, and Python prints it as
    "Exception ignored in ..." with a traceback (seen in a CI run interrupted during the explanation section, which
    runs in the main thread). It is counted all the same (:func:`_on_interrupt`) and ends the run as
    interrupted, so it is not printed; any other unraisable exception is, as before."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) or unraisable.exc_type is KeyboardInterrupt:
        return
    (_hooks.get("unraisable") or sys.__unraisablehook__)(unraisable)


def interrupted() -> bool:
    """Whether Ctrl-C came since :func:`catch_interrupts`."""
    return _interrupts["count"] > 0


def abandoned() -> list[threading.Thread]:
    """dlaudit's worker threads still running (work abandoned after Ctrl-C or a timeout)."""
    return [t for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX) and t.is_alive()]


def exit_now(code: int, *, grace: float = 1.0) -> None:
    """End the process with ``code``: after Ctrl-C (``code`` 130), or when a worker thread is still running
    after ``grace`` seconds, without the interpreter's shutdown, which aborted the process there
    ("terminate called without an active exception", SIGABRT, in about a quarter of the runs interrupted
    during the explanation section: C++ threads torn down mid-work).

    The ``atexit`` handlers (Ray's shutdown, temporary files) run first, and the standard streams are flushed.
    Another Ctrl-C meanwhile is ignored: the process is already ending with ``code``.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    deadline = time.perf_counter() + grace
    for thread in abandoned():
        thread.join(max(0.0, deadline - time.perf_counter()))
    if code != INTERRUPTED and not abandoned():
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)
