"""A small headless-chromium driver over the Chrome DevTools Protocol, for tests that click through the UI.

No browser download: it runs the machine's chromium with `--remote-debugging-port` and talks to one page over a
websocket. Clicks and keys are real input events at the element's place on screen, as a person's would be.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
FIND_BY_TEXT = """(([selector, text, nth]) => {
  const shown = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const found = [...document.querySelectorAll(selector)].filter((e) => shown(e) && (text === null
    || e.textContent.trim() === text || e.getAttribute('aria-label') === text));
  return found[nth] || null;
})"""


def find_browser() -> str | None:
    return next((found for name in BROWSER_NAMES if (found := shutil.which(name))), None)


class BrowserError(AssertionError):
    """The page did not do what the test waited for; the message says what, and where the screenshot is."""


class Page:
    """One tab: navigate, evaluate, wait for a condition, click and type like a person, take screenshots."""

    def __init__(self, socket: ClientConnection, screenshots: Path):
        self._socket, self._ids, self._screenshots = socket, itertools.count(1), screenshots
        self.events: list[dict] = []  # DevTools events received so far (those of the domains a test enabled)

    def send(self, method: str, **params: Any) -> dict:
        """One DevTools command and its result; events arriving meanwhile are kept in `events`."""
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=120))
            if "method" in message:
                self.events.append(message)
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", f"{url} loaded")

    def wait_for(self, condition: str, what: str, timeout: float = 60) -> Any:
        """The first truthy value of a JavaScript expression, polled until `timeout`; a screenshot if it never is."""
        return self.wait_until(lambda: self.evaluate(condition), what, timeout)

    def wait_until(self, probe: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := probe()):
            if time.monotonic() > deadline:
                shot = self.screenshot(self._screenshots / "timeout.png")
                raise BrowserError(f"waited {timeout:.0f} s for {what}; the page as it was: {shot}")
            time.sleep(0.25)
        return value

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def wait_for_text(self, text: str, timeout: float = 60) -> None:
        self.wait_for(f"document.body.innerText.includes({json.dumps(text)})", repr(text), timeout)

    def _center(self, selector: str, text: str | None, nth: int, timeout: float) -> tuple[float, float]:
        """Where the element is on screen once it is shown, enabled, on top and still (a dialog may be sliding in)."""
        find = f"{FIND_BY_TEXT}({json.dumps([selector, text, nth])})"
        probe = f"""(() => {{ const e = {find}; if (!e || e.disabled || e.getAttribute('aria-disabled') === 'true')
          return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
          const [x, y] = [r.x + r.width / 2, r.y + r.height / 2], top = document.elementFromPoint(x, y);
          return top && (e.contains(top) || top.contains(e)) ? [x, y] : null; }})()"""
        last: list = [None]

        def still() -> list | None:
            now, before = self.evaluate(probe), last[0]
            last[0] = now
            return now if now is not None and now == before else None

        x, y = self.wait_until(still, f"{selector} {text!r} shown, enabled and still", timeout)
        return x, y

    def click(self, selector: str, text: str | None = None, nth: int = 0, timeout: float = 60) -> None:
        """A left click at the centre of the `nth` shown element matching `selector` whose text (or label) is `text`."""
        x, y = self._center(selector, text, nth, timeout)
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, text: str) -> None:
        """Text typed into the focused element, replacing what it held (select all, then the new text)."""
        modifier = 2  # Ctrl
        self.send("Input.dispatchKeyEvent", type="keyDown", key="a", code="KeyA", modifiers=modifier,
                  windowsVirtualKeyCode=65, commands=["selectAll"])  # fmt: skip
        self.send("Input.dispatchKeyEvent", type="keyUp", key="a", code="KeyA", modifiers=modifier)
        self.send("Input.insertText", text=text)

    def press(self, key: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=key_code)

    def resize(self, width: int, height: int) -> None:
        """The window's size in CSS pixels (at scale 1, so a screenshot is `width` x `height`)."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path: Path) -> Path:
        """The viewport as a PNG at `path`."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def _devtools_port(profile: Path, process: subprocess.Popen, timeout: float = 60) -> int:
    """The port chromium chose (it writes it to DevToolsActivePort in its profile folder)."""
    active, deadline = profile / "DevToolsActivePort", time.monotonic() + timeout
    while not (active.exists() and active.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise BrowserError(f"chromium did not open its DevTools port (exit code {process.poll()})")
        time.sleep(0.1)
    return int(active.read_text().split()[0])


@contextmanager
def open_page(browser: str, screenshots: Path, width: int = 1600, height: int = 1000) -> Iterator[Page]:
    """A headless chromium with a fresh profile and one blank tab of `width` x `height`; stopped afterwards."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    flags = ["--headless=new", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", f"--window-size={width},{height}"]  # fmt: skip
    flags += ["--no-sandbox"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [browser, *flags, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        port = _devtools_port(Path(profile), process)
        with connect(_first_page(port), proxy=None, max_size=None) as socket:
            page = Page(socket, screenshots)
            page.send("Page.enable")
            page.resize(width, height)
            yield page
    finally:
        _stop(process)
        _remove_profile(Path(profile))


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to chromium's whole process group (its helper processes too), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def _remove_profile(profile: Path, timeout: float = 10) -> None:
    """The profile folder removed; retried while a helper process still exiting writes into it (it did, at times)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _first_page(port: int) -> str:
    """The websocket address of chromium's one tab (its own list, read without any proxy of this machine)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
        targets = json.load(answer)
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
