"""Headless Chromium for tests that must see a page as a browser renders it (the Swagger UI at `/docs`).

Debian's `chromium`, installed by `infra/scripts/install-test-deps.sh`, driven with its own `--dump-dom`:
no browser download and no driver library. Without it the tests that need it are skipped, saying why.
"""

import asyncio
import shutil
import tempfile

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
