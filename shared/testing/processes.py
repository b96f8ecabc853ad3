"""The services as real processes, started the way `make run` starts them (gunicorn via infra/scripts/run.sh).

For tests that need what only a process shows: several workers, signals, a kill -9.
"""

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Services:
    """Both services under one run.sh process group, on ports of their own."""

    env: dict[str, str]
    log_path: Path
    customer_port: int = field(default_factory=free_port)
    order_port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def customer_url(self) -> str:
        return f"http://127.0.0.1:{self.customer_port}"

    @property
    def order_url(self) -> str:
        return f"http://127.0.0.1:{self.order_port}"

    async def start(self, timeout: float = 30.0) -> "Services":
        env = {
            **os.environ,
            "CUSTOMER_SERVICE_URL": self.customer_url,  # unless `env` routes it elsewhere (through a proxy)
            **self.env,
            "CUSTOMER_PORT": str(self.customer_port),
            "ORDER_PORT": str(self.order_port),
            "PY": str(Path(sys.executable).parent),
            "RUN_DIR": str(self.log_path.parent / f"run-{self.log_path.stem}"),
        }  # one per instance
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(ROOT / "infra/scripts/run.sh"),
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        await self.wait_ready(timeout)
        return self

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            for url in (self.customer_url, self.order_url):
                while True:
                    try:
                        async with session.get(f"{url}/ready") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if self.process.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{url} not ready; see {self.log_path}:\n{self.log_tail()}")
                    await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal_group(self, sig: signal.Signals) -> None:
        os.killpg(self.process.pid, sig)

    async def stop(self, timeout: float = 30.0) -> int:
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else 0
        self.signal_group(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            self.signal_group(signal.SIGKILL)
            return await self.process.wait()


def gunicorn_pids(services: Services, name: str) -> list[int]:
    """The pids of one service's gunicorn processes (master and workers) in this run's process group."""
    pgid = services.process.pid
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        if any(b"gunicorn" in part for part in cmdline) and f"{name}.app:create_app".encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def gunicorn_workers(services: Services, name: str) -> list[int]:
    """The worker processes of one service: those whose parent is that service's gunicorn master."""
    pids = set(gunicorn_pids(services, name))
    return [pid for pid in pids if _parent(pid) in pids]


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])
