"""Headless Chromium for tests that must see a page as a browser renders it (the Swagger UI at `/docs`).

Debian's `chromium`, installed by `infra/scripts/install-test-deps.sh`, driven with its own `--dump-dom`,
or through the DevTools protocol (`chromium_page`): no browser download and no driver library. Without it
the tests that need it are skipped, saying why.
"""

import asyncio
import contextlib
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (infra/scripts/install-test-deps.sh installs it)"
)

# What works headless as root in a container, with nothing phoning home.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


async def rendered_dom(url: str, budget_ms: int = 10_000, timeout: float = 60.0) -> str:
    """The DOM after the page's scripts ran and went idle: virtual time waits for their fetches, not a sleep."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


class Page:
    """One tab of a headless Chromium, driven through the DevTools protocol over its WebSocket (aiohttp's
    client: no driver library). `evaluate` runs an expression in the page; `click` presses the mouse on
    an element's centre, as a user's click does (its own events, not `element.click()`)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self._ids = ws, itertools.count(1)

    async def send(self, method: str, **params):
        call_id = next(self._ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        async with asyncio.timeout(30):
            while True:
                message = await self.ws.receive_json()
                if message.get("id") == call_id:
                    assert "error" not in message, message
                    return message["result"]

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def click(self, selector: str) -> None:
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView(); "
            "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


@contextlib.asynccontextmanager
async def chromium_page(url: str) -> AsyncIterator[Page]:
    """A fresh profile, a page on `url`; everything closed and removed afterwards."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                assert process.returncode is None, "chromium exited"
                await asyncio.sleep(0.05)  # polling for the file chromium writes, with a deadline
            port = port_file.read_text().splitlines()[0]
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with session.ws_connect(page_url, max_msg_size=0) as ws:
                    page = Page(ws)
                    await page.send("Page.enable")
                    await page.send("Page.navigate", url=url)
                    yield page
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
