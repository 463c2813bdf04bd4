"""Load a page in headless Chromium over the DevTools protocol (a pipe, no network port).

Chromium started with ``--remote-debugging-pipe`` reads commands on file descriptor 3 and writes
replies and events on descriptor 4, as JSON messages ended by a NUL byte. This is just enough of
the protocol to open a page, collect its console errors and ask the page about its images.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGES = """JSON.stringify([...document.images].map(i => {
  const r = i.getBoundingClientRect(); const s = getComputedStyle(i);
  return {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
          shown: r.width > 0 && r.height > 0 && s.display !== 'none' && s.visibility !== 'hidden',
          figure: i.closest('figure') !== null};
}))"""
FIGURES = "document.querySelectorAll('figure').length"


@dataclass
class PageLoad:
    """What the page did: console errors and exceptions, and its images."""

    errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    figures: int = 0
    result: Any = None


class _Pipe:
    def __init__(self, browser: Path, profile: str) -> None:
        to_browser, self._in = os.pipe()  # the browser reads fd 3
        self._out, from_browser = os.pipe()  # and writes fd 4

        def arrange() -> None:  # in the child: put the pipe ends at 3 and 4, inheritable
            a, b = os.dup(to_browser), os.dup(from_browser)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [
                str(browser),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            preexec_fn=arrange,  # the test process runs no threads, so fork is safe
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        return self._next

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        *,
        deadline: float,
    ) -> dict:
        wanted = self.send(method, params, session)
        while True:
            message = self.receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._in)
            os.close(self._out)


def _error_text(event: dict) -> str | None:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return "console: " + " ".join(
            str(a.get("value", a.get("description"))) for a in params["args"]
        )
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return "exception: " + str(details.get("exception", {}).get("description", details))
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        return "log: " + params["entry"].get("text", "")
    return None


def load_page(
    browser: Path, url: str, timeout: float = 60.0, script: str | None = None
) -> PageLoad:
    """Open ``url`` in headless Chromium and report its errors and images once it has loaded.

    ``script``, a JavaScript expression, is evaluated in the loaded page; its value (returned
    by value, e.g. from ``JSON.stringify``) is :attr:`PageLoad.result`.
    """
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="needling-browser-") as profile:
        pipe = _Pipe(browser, profile)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, deadline=deadline)
            session = pipe.call(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                deadline=deadline,
            )["sessionId"]
            for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                pipe.call(domain, session=session, deadline=deadline)
            pipe.call("Page.navigate", {"url": url}, session=session, deadline=deadline)
            while not any(e.get("method") == "Page.loadEventFired" for e in pipe.events):
                pipe.events.append(pipe.receive(deadline))

            def evaluate(expression: str) -> Any:
                result = pipe.call(
                    "Runtime.evaluate",
                    {"expression": expression, "returnByValue": True},
                    session=session,
                    deadline=deadline,
                )
                return result["result"]["value"]

            page = PageLoad(images=json.loads(evaluate(IMAGES)), figures=evaluate(FIGURES))
            if script is not None:
                page.result = evaluate(script)
            page.errors = [t for e in pipe.events if (t := _error_text(e)) is not None]
            return page
        finally:
            pipe.close()
