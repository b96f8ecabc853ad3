"""A Prometheus server of the test's own (Debian's `prometheus`), on a free port with a config the test writes."""

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml

from shared.testing.plugin import eventually
from shared.testing.processes import free_port

PROMETHEUS = shutil.which("prometheus")
MISSING = "not installed: Debian's `prometheus` package has it (infra/scripts/install-test-deps.sh)"


async def api(session: aiohttp.ClientSession, url: str, **params: str) -> dict | list:
    """The `data` of a Prometheus HTTP API answer, which must say `success`."""
    async with session.get(url, params=params) as response:
        body = await response.json()
        assert body["status"] == "success", body
        return body["data"]


@contextlib.asynccontextmanager
async def running(config: dict, folder: Path) -> AsyncIterator[str]:
    """Start Prometheus with `config`, its data and log in `folder`; yields its base URL once it is ready;
    stops it afterwards."""
    assert PROMETHEUS is not None, f"prometheus {MISSING}"
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession() as session:

            async def ready():
                assert process.returncode is None, log_path.read_text()[-2000:]
                try:
                    async with session.get(f"{base}/-/ready") as response:
                        assert response.status == 200
                except aiohttp.ClientError as exc:
                    raise AssertionError(f"not listening yet: {exc}") from exc

            await eventually(ready, timeout=60, interval=0.2)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
