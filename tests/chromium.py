"""Render an HTML page in a real headless Chromium (Debian's ``chromium``) and report what a person would see.

Why a browser and not a parser: a report can reference a PNG that is missing, corrupt or unreadable, or carry
markup that throws; only a browser that loads and decodes every image says whether the page shows them. This
drives Chromium over the DevTools protocol (``websockets``, already pinned) on a loopback port: navigate, wait
for the load event, read every ``<img>``'s decoded size, collect console errors, uncaught exceptions and failed
loads, and take a full-page PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--hide-scrollbars"]


def executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Rendered:
    images: list[dict]  # {"src", "loaded", "width", "height"}
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads

    @property
    def broken_images(self) -> list[str]:
        return [i["src"] for i in self.images if not i["loaded"]]


class _Cdp:
    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=64 * 1024 * 1024, open_timeout=20)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, name: str, timeout: float = 60.0) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == name:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("method") == name:
                return msg
            self.events.append(msg)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif m == "Runtime.exceptionThrown":
            out.append("exception: " + p["exceptionDetails"].get("text", ""))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
    return out


def render(page: Path, png: Path, width: int = 1280, timeout: float = 90.0) -> Rendered:
    """Load ``page`` (a local HTML file) in headless Chromium, screenshot it to ``png`` and report its images."""
    exe = executable()
    if exe is None:
        raise FileNotFoundError("chromium not found (tools/install-sysdeps.sh installs Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="dysan-chromium-") as profile:
        proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                 "--remote-debugging-address=127.0.0.1", f"--window-size={width},900",
                                 "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
                time.sleep(0.1)
            port = int(port_file.read_text().splitlines()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                target = next(t for t in json.load(r) if t.get("type") == "page")
            cdp = _Cdp(target["webSocketDebuggerUrl"])
            try:
                for domain in ("Page", "Runtime", "Log", "Network"):
                    cdp.call(f"{domain}.enable")
                cdp.call("Page.navigate", url=page.resolve().as_uri())
                cdp.wait_event("Page.loadEventFired", timeout=timeout)
                images = cdp.call("Runtime.evaluate", returnByValue=True, expression=(
                    "Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
                    "loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth, height: i.naturalHeight}))"
                ))["result"]["value"]
                metrics = cdp.call("Page.getLayoutMetrics")
                size = metrics.get("cssContentSize") or metrics["contentSize"]
                shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
                png.write_bytes(base64.b64decode(shot["data"]))
                time.sleep(0.2)  # late console messages
                return Rendered(images=images, errors=_errors(cdp.events))
            finally:
                cdp.ws.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
