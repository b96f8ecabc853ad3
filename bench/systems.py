"""The two systems under test: how each is reset, started, found in the process table and stopped.

Both run under gunicorn with the aiohttp uvloop worker and the same worker count. Each owns its
databases and broker names, so a bench run never touches the real system's data or queues.
"""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import psutil

from shared.amqp import connect_first
from shared.broker_urls import broker_urls

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "bench" / ".run"
BIN = Path(sys.executable).parent  # the project venv: the Makefile runs us with .venv/bin/python
HOST = "127.0.0.1"
PG_SERVER = f"postgres@{HOST}:5432"  # trust auth on loopback
ADMIN_DSN = f"postgresql://{PG_SERVER}/postgres"
AMQP_URL = os.environ.get("AMQP_URL", f"amqp://guest:guest@{HOST}:5672/")

START_TIMEOUT = 60.0  # seconds for both services to answer after launch
STOP_TIMEOUT = 45.0  # gunicorn's graceful_timeout is 20 s; after this we kill
PREPARE_TIMEOUT = 180.0
POLL_INTERVAL = 0.2


class BenchError(Exception):
    """The bench could not run as intended (a service did not start, a tool failed)."""


def port_in_use(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class System:
    """One customer service and one order service, started together as one process tree."""

    name: str
    customer_port: int
    order_port: int
    databases: tuple[str, str]  # customers, orders
    queues: tuple[str, ...]  # broker queues this system owns; deleted before each run
    probe_paths: tuple[str, ...] = ("/health",)
    amqp_url = AMQP_URL

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.processes: list[asyncio.subprocess.Process] = []
        self.log_path = RUN_DIR / f"{self.name}.log"

    @property
    def customer_url(self) -> str:
        return f"http://{HOST}:{self.customer_port}"

    @property
    def order_url(self) -> str:
        return f"http://{HOST}:{self.order_port}"

    def database_url(self, database: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://{PG_SERVER}/{database}"  # the services' settings expect the `postgres` scheme

    async def reset(self) -> None:
        """Fresh databases, queues and log: a message left by an aborted run would count for a new customer."""
        for port in (self.customer_port, self.order_port):
            if port_in_use(port):
                raise BenchError(f"port {port} is already in use: is another bench (or service) running?")
        async with admin_connection() as conn:
            for database in self.databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        try:
            connection = await connect_first(broker_urls(self.amqp_url))
        except ConnectionError as exc:
            raise BenchError(f"RabbitMQ is not reachable: {exc}") from None
        try:
            channel = await connection.channel()
            for queue in self.queues:
                await channel.queue_delete(queue)
        finally:
            await connection.close()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(b"")

    async def prepare(self) -> None:
        raise NotImplementedError

    async def launch(self, log) -> None:
        raise NotImplementedError

    def masters(self) -> dict[str, psutil.Process]:
        """The gunicorn master of each service, by service name."""
        raise NotImplementedError

    async def start(self) -> None:
        await self.prepare()
        with self.log_path.open("ab") as log:
            await self.launch(log)

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        """Until every probe answers 200 and each master has all its workers; bounded by START_TIMEOUT."""
        deadline = time.monotonic() + START_TIMEOUT
        urls = [f"{base}{path}" for base in (self.customer_url, self.order_url) for path in self.probe_paths]
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.returncode is not None:
                    raise BenchError(f"{self.name} exited ({process.returncode}) while starting; see {self.log_path}")
            if all(await asyncio.gather(*(answers_ok(http, url) for url in urls))) and self._workers_up():
                return
            await asyncio.sleep(POLL_INTERVAL)
        raise BenchError(f"{self.name} did not become ready in {START_TIMEOUT:.0f} s; see {self.log_path}")

    def _workers_up(self) -> bool:
        try:
            masters = self.masters()
            return len(masters) == 2 and all(len(m.children()) == self.workers for m in masters.values())
        except psutil.Error:
            return False

    def snapshot(self) -> dict[str, list[dict]]:
        """CPU seconds (user + system) and RSS of every gunicorn process, by service."""
        result = {}
        for service, master in self.masters().items():
            result[service] = [process_row(role, process) for role, process in processes_of(master)]
        return result

    async def stop(self) -> None:
        """SIGTERM, wait for a graceful exit, then kill what is left of each process group."""
        if self.processes:
            print(f"[{self.name}] stopping it", flush=True)
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                print(f"bench: {self.name} did not stop in {STOP_TIMEOUT:.0f} s; killing it", file=sys.stderr)
            # Our processes lead their own sessions (start_new_session): the group id is the pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        self.processes = []


def processes_of(master: psutil.Process) -> list[tuple[str, psutil.Process]]:
    """A gunicorn master and its workers, each with its role."""
    return [("master", master), *(("worker", worker) for worker in master.children())]


def process_row(role: str, process: psutil.Process) -> dict:
    with process.oneshot():
        cpu, rss = process.cpu_times(), process.memory_info().rss
    return {"pid": process.pid, "role": role, "cpu_s": cpu.user + cpu.system, "rss_mb": rss / 2**20}


@contextlib.asynccontextmanager
async def admin_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection to the server's `postgres` database, for creating and dropping the bench databases."""
    try:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise BenchError(f"PostgreSQL is not reachable at {ADMIN_DSN} ({type(exc).__name__}: {exc})") from None
    try:
        yield conn
    finally:
        await conn.close()


async def answers_ok(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def run_tool(args: list[str], env: dict, log, timeout: float) -> None:
    process = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        code = await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchError(f"{' '.join(args)} took more than {timeout:.0f} s") from None
    if code != 0:
        raise BenchError(f"{' '.join(args)} exited with {code}")


class Baseline(System):
    """bench/baseline: aiohttp + raw asyncpg + aiormq; the apps create their tables at start."""

    name = "baseline"
    customer_port, order_port = 3400, 3401
    databases = ("bench_baseline_customers", "bench_baseline_orders")
    exchange, queue = "bench.baseline.orders", "bench.baseline.customer.orders"
    queues = (queue,)

    async def prepare(self) -> None:
        async with admin_connection() as conn:
            for database in self.databases:
                await conn.execute(f'CREATE DATABASE "{database}"')

    async def launch(self, log) -> None:
        env = {
            **os.environ,
            "AMQP_URL": AMQP_URL,
            "BASELINE_CUSTOMER_DATABASE_URL": self.database_url(self.databases[0]),
            "BASELINE_ORDER_DATABASE_URL": self.database_url(self.databases[1]),
            "BASELINE_CUSTOMER_URL": self.customer_url,
            "BASELINE_EXCHANGE": self.exchange,
            "BASELINE_QUEUE": self.queue,
        }
        for service, port in (("customer", self.customer_port), ("order", self.order_port)):
            args = [str(BIN / "gunicorn"), f"bench.baseline.{service}_app:create_app", "--no-control-socket"]
            args += ["--worker-class", "aiohttp.GunicornUVLoopWebWorker", "--workers", str(self.workers)]
            args += ["--bind", f"{HOST}:{port}", "--name", f"baseline-{service}"]
            self.processes.append(
                await asyncio.create_subprocess_exec(
                    *args, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
                )
            )

    def masters(self) -> dict[str, psutil.Process]:
        return {
            service: psutil.Process(process.pid)
            for service, process in zip(("customer", "order"), self.processes, strict=True)
        }


def our_queues(queue: str) -> tuple[str, ...]:
    """The customer service's queue and those its topology declares around it (bench-owned names)."""
    return (queue, f"{queue}.dlq", *(f"{queue}.retry.{delay}" for delay in ("5s", "30s", "120s", "300s")))


class Ours(System):
    """The real services, started by infra/scripts/run.sh as `make run` does, on bench databases and names."""

    name = "ours"
    customer_port, order_port = 3300, 3301
    databases = ("bench_customers", "bench_orders")
    exchange, queue = "bench.orders", "bench.customer.orders"
    queues = our_queues(queue)
    probe_paths = ("/health", "/ready")
    order_amqp_url = AMQP_URL  # the backlog phase restarts it behind a TCP proxy (bench/phases/backlog.py)

    def env(self) -> dict:
        return {
            **os.environ,
            "PY": str(BIN),
            "AMQP_URL": self.amqp_url,
            "ORDER_AMQP_URL": self.order_amqp_url,
            "CUSTOMER_DATABASE_URL": self.database_url(self.databases[0], "postgres"),
            "ORDER_DATABASE_URL": self.database_url(self.databases[1], "postgres"),
            "CUSTOMER_PORT": str(self.customer_port),
            "ORDER_PORT": str(self.order_port),
            "CUSTOMER_SERVICE_URL": self.customer_url,
            "EVENTS_EXCHANGE": self.exchange,
            "CUSTOMER_ORDERS_QUEUE": self.queue,
            "WORKERS": str(self.workers),
            "RUN_DIR": str(RUN_DIR / self.name),  # its metrics directories
            "AUTH_MODE": "off",
        }

    async def prepare(self) -> None:
        with self.log_path.open("ab") as log:
            for service in ("customer", "order"):
                await run_tool([sys.executable, "-m", f"{service}.manage", "prepare"], self.env(), log, PREPARE_TIMEOUT)

    async def launch(self, log) -> None:
        run_sh = ROOT / "infra" / "scripts" / "run.sh"
        self.processes.append(
            await asyncio.create_subprocess_exec(
                "bash", str(run_sh), cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True
            )
        )

    def masters(self) -> dict[str, psutil.Process]:
        found = {}
        for child in psutil.Process(self.processes[0].pid).children():
            command = " ".join(child.cmdline())
            for service in ("customer", "order"):
                if f"{service}.app:create_app" in command:
                    found[service] = child
        return found
