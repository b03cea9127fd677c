"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol.

The report forbids scripts (its Content-Security-Policy), so the test observes
it from outside: Chromium is started with ``--remote-debugging-pipe`` (the
DevTools protocol over file descriptors 3 and 4, no websocket client needed),
records console messages, exceptions and network requests while the page
loads, reads every image's natural size, and takes a screenshot.

Chromium comes from Debian's ``chromium`` package (.ci/run installs it); the
test is skipped, saying so, where it is not installed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dlaudit import save_report
from dlaudit.report import Report

pytestmark = pytest.mark.browser

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--window-size=1200,3000",
    "--remote-debugging-pipe",
]
TIMEOUT = 60.0


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above 4 and close on exec, so dup2 onto 3 and 4 cannot clobber them."""
    r, w = os.pipe()
    hi = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(r)
    os.close(w)
    return hi


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

    Chromium reads NUL-terminated JSON commands from fd 3 and writes replies
    and events to fd 4 (https://chromedevtools.github.io/devtools-protocol/).
    """

    def __init__(self, chromium: str, profile: Path) -> None:
        cmd_r, self._cmd_w = _high_pipe()  # we write commands, chromium reads them on fd 3
        self._out_r, out_w = _high_pipe()  # chromium writes fd 4, we read
        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: (os.dup2(cmd_r, 3), os.dup2(out_w, 4)),
            close_fds=False,  # Python's own descriptors are not inheritable (PEP 446); 3 and 4 must survive
        )
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send a command and wait for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str) -> dict[str, Any]:
        return self._wait(lambda m: m.get("method") == method, keep=True)

    def _wait(self, match: Callable[[dict[str, Any]], bool], keep: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)
                if match(msg):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)


def open_in_chromium(page: Path, screenshot: Path, profile: Path) -> dict[str, Any]:
    """Load ``page`` and report console errors, network requests, image sizes; save a screenshot."""
    assert CHROMIUM is not None
    tools = DevTools(CHROMIUM, profile)
    try:
        target = next(t for t in tools.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = tools.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.send(f"{domain}.enable", session=session)
        tools.send("Page.navigate", {"url": page.as_uri()}, session=session)
        tools.wait_event("Page.loadEventFired")
        images = tools.send(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify([...document.images].map(i => ({w: i.naturalWidth, h: i.naturalHeight, done: i.complete, alt: i.alt})))",
                "returnByValue": True,
            },
            session=session,
        )["result"]["value"]
        title = tools.send(
            "Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session=session
        )["result"]["value"]
        shot = tools.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = list(tools.events)
    finally:
        tools.close()
    console = [
        e["params"]
        for e in events
        if e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "warning", "assert")
    ]
    log_errors = [
        e["params"]["entry"]
        for e in events
        if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning")
    ]
    exceptions = [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    return {
        "images": json.loads(images),
        "title": title,
        "console": console + log_errors + exceptions,
        "requests": requests,
    }


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; .ci/run does this)"
)


@needs_chromium
def test_report_renders_in_chromium(tmp_path: Path, report: Report, digits_cnn: Any) -> None:
    import dlaudit

    real = dlaudit.audit(digits_cnn, checks=["performance"], device="cpu")
    report.sections.insert(0, real.sections[0])  # a real confusion matrix too
    report.sections.pop(1)  # ... instead of the hand-built performance section
    page = save_report(report, tmp_path / "report dir" / "audit.html")  # a space in the path: file URLs must still work
    screenshot = tmp_path / "report.png"
    result = open_in_chromium(page, screenshot, tmp_path / "profile")

    assert result["title"] == report.title
    assert result["console"] == [], "console errors or warnings while loading the report"
    page_url = page.as_uri()
    outside = [u for u in result["requests"] if u != page_url and not u.startswith("data:")]
    assert outside == [], "the report must make no requests"
    figures = sum(len(s.figures) for s in report.sections)
    assert len(result["images"]) == figures >= 3
    for img in result["images"]:
        assert img["done"] and img["w"] > 0 and img["h"] > 0, img
        assert img["alt"]
    if os.environ.get("DLAUDIT_SCREENSHOT_DIR"):  # keep the screenshot to look at (or upload from CI)
        shutil.copy(screenshot, Path(os.environ["DLAUDIT_SCREENSHOT_DIR"]) / "report.png")
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1200 and height >= 3000


@needs_chromium
def test_browser_check_catches_a_blocked_request(tmp_path: Path) -> None:
    """The harness itself: a page that tries to load a remote image is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><title>bad</title></head><body><img src="http://192.0.2.1/x.png" alt="x"></body></html>'
    )
    result = open_in_chromium(page, tmp_path / "bad.png", tmp_path / "profile")
    assert any(u.startswith("http://192.0.2.1/") for u in result["requests"])
    assert result["images"][0]["w"] == 0
