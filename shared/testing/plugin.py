"""pytest plugin with the helpers both services' suites use (loaded from pyproject's addopts).

Test databases and broker names are unique per run, created here and removed at
the end, so the suite never touches the run databases or the run topology.
"""

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiormq
import asyncpg
import orjson
import pytest

from shared.db import asyncpg_dsn, database_name, drop_database, with_database
from shared.logs import RequestIdFilter
from shared.testing.issuers import DevIssuer, OwnIssuer
from shared.testing.podman import Podman, PodmanUnavailable
from shared.testing.processes import Services
from shared.testing.project_image import build_project_image, prepared_podman
from shared.testing.proxy import TcpProxy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# The user the suite's connections log in as, the apps' too: the `user_id` a test's event must carry to
# be trusted by the consumer under test (as the consumer's own user).
BROKER_USER = urlsplit(AMQP_URL).username or "guest"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[object]], timeout: float = 5.0, interval: float = 0.02):
    """Poll `check` until it stops raising AssertionError (or returns truthy); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result is not False:
                return result
            error: AssertionError = AssertionError("check returned False")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise error
        await asyncio.sleep(interval)


def migrate(service: str, env_var: str, url: str) -> None:
    """Create and migrate a database with the service's own CLI, as `make run` does."""
    done = subprocess.run(
        [sys.executable, "-m", f"{service}.manage", "migrate"],
        env={**os.environ, env_var: url},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{service}.manage migrate exited {done.returncode}: {done.stderr[-2000:]}"


@dataclass(frozen=True)
class TestRun:
    id: str
    customer_db: str
    order_db: str
    exchange: str
    queue: str
    retry_delays: tuple[int, ...] = (5, 30, 120, 300)  # the default: the consumer declares a queue for each


def new_run(runs: list[TestRun], retry_delays: tuple[int, ...] = TestRun.retry_delays) -> TestRun:
    """A run with migrated databases, in `runs` before anything is made: a migrate that fails leaves
    nothing the end of the session does not remove."""
    run_id = uuid.uuid4().hex[:8]
    run = TestRun(
        id=run_id,
        customer_db=with_database(SERVER_URL, f"customers_test_{run_id}"),
        order_db=with_database(SERVER_URL, f"orders_test_{run_id}"),
        exchange=f"orders.test.{run_id}",
        queue=f"customer.orders.test.{run_id}",
        retry_delays=retry_delays,
    )
    runs.append(run)
    migrate("customer", "CUSTOMER_DATABASE_URL", run.customer_db)
    migrate("order", "ORDER_DATABASE_URL", run.order_db)
    return run


@pytest.fixture(scope="session")
def run_names() -> list[TestRun]:
    """Every run of this session (of this xdist worker): its databases and broker names go at the end, and
    the session fails if any of them is still there. Broker names wait for the end because a test's own
    teardown may run while its app still consumes, and a consumer whose queue is deleted declares it again."""
    runs: list[TestRun] = []
    yield runs
    asyncio.run(_remove_runs(runs))


@pytest.fixture(scope="session")
def test_run(run_names) -> TestRun:
    return new_run(run_names)


@pytest.fixture
async def scratch_run(run_names):
    """Factory: a run of its own (fresh databases and broker names) for a test that fills tables or
    breaks things the other tests must not see; its databases are dropped afterwards, its broker
    names at the end of the session."""
    made: list[TestRun] = []

    def make(retry_delays: tuple[int, ...] = TestRun.retry_delays) -> TestRun:
        made.append(new_run(run_names, retry_delays))
        return made[-1]

    yield make
    for run in made:
        await _drop_databases(run)


@contextlib.asynccontextmanager
async def aiormq_channel():
    """A channel on the shared broker, closed afterwards."""
    connection = await aiormq.connect(AMQP_URL)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


def broker_names(run: TestRun) -> tuple[list[str], list[str]]:
    """(queues, exchanges) the services declare for a run: the consumer's queue, its dead-letter and
    retry queues and their exchanges, and the events exchange."""
    queues = [run.queue, f"{run.queue}.dlq", *(f"{run.queue}.retry.{d}s" for d in run.retry_delays)]
    return queues, [run.exchange, f"{run.queue}.dlx", f"{run.queue}.retry"]


async def _remove_runs(runs: list[TestRun]) -> None:
    for run in runs:
        await _drop_databases(run)
    async with aiormq_channel() as channel:
        for run in runs:
            queues, exchanges = broker_names(run)
            for queue in queues:
                await channel.queue_delete(queue)
            for exchange in exchanges:
                await channel.exchange_delete(exchange)
    left = [name for run in runs for name in await _left_on_the_servers(run)]
    assert not left, f"the test run left these on the shared servers: {left}"


async def _drop_databases(run: TestRun) -> None:
    for url in (run.customer_db, run.order_db):
        await drop_database(url)


async def _left_on_the_servers(run: TestRun) -> list[str]:
    """The run's databases, queues and exchanges that still exist (a passive declare of a missing name
    closes its channel, so one channel each)."""
    conn = await asyncpg.connect(asyncpg_dsn(SERVER_URL), timeout=5)
    try:
        names = [database_name(url) for url in (run.customer_db, run.order_db)]
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
        left = [f"database {row['datname']}" for row in rows]
    finally:
        await conn.close()
    connection = await aiormq.connect(AMQP_URL)
    try:
        queues, exchanges = broker_names(run)
        for kind, name in [*(("queue", q) for q in queues), *(("exchange", e) for e in exchanges)]:
            channel = await connection.channel()
            declare = channel.queue_declare if kind == "queue" else channel.exchange_declare
            with contextlib.suppress(aiormq.exceptions.ChannelNotFoundEntity):
                await declare(name, passive=True)
                left.append(f"{kind} {name}")
                await channel.close()
    finally:
        await connection.close()
    return left


@pytest.fixture
async def tcp_proxy():
    """Factory: `proxy = await tcp_proxy(host, port)`; every proxy is closed after the test.

    `tcp_proxy(host, port, kind=AmqpProxy)` gives one that can also block like a broker's alarm.
    """
    proxies: list[TcpProxy] = []

    async def make(host: str, port: int, kind: type[TcpProxy] = TcpProxy) -> TcpProxy:
        proxies.append(await kind(host, port).start())
        return proxies[-1]

    yield make
    for proxy in proxies:
        await proxy.close()


@pytest.fixture
def request_logs(caplog):
    """caplog at INFO with each record stamped with its request id, as the JSON log lines are."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    return caplog


class EventTap:
    """A private queue bound to the test exchange: every event the system publishes, as received."""

    def __init__(self) -> None:
        self.messages: list = []

    def bodies(self, event_type: str | None = None) -> list[dict]:
        return [orjson.loads(m.body) for m in self.messages if event_type is None or m.routing_key == event_type]


@pytest.fixture
async def event_tap(test_run):
    connection = await aiormq.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.exchange_declare(test_run.exchange, exchange_type="topic", durable=True)
    queue = (await channel.queue_declare("", exclusive=True, auto_delete=True)).queue
    await channel.queue_bind(queue, test_run.exchange, routing_key="#")
    tap = EventTap()

    async def collect(message) -> None:
        tap.messages.append(message)

    await channel.basic_consume(queue, collect, no_ack=True)
    yield tap
    await connection.close()


@pytest.fixture
async def broker(test_run):
    """A channel on the shared broker, for publishing raw messages and reading the dead-letter queue."""
    async with aiormq_channel() as channel:
        yield channel


@pytest.fixture
async def start_services(test_run, tmp_path):
    """Factory: `services = await start_services(WORKERS="2")` runs both services as `make run` does."""
    started: list[Services] = []

    async def start(**env: str) -> Services:
        services = Services(
            env={
                "CUSTOMER_DATABASE_URL": test_run.customer_db,
                "ORDER_DATABASE_URL": test_run.order_db,
                "EVENTS_EXCHANGE": test_run.exchange,
                "CUSTOMER_ORDERS_QUEUE": test_run.queue,
                "AUTH_MODE": "off",  # as `make run`; a test that wants tokens passes AUTH_MODE=jwt and the issuer
                **env,
            },
            log_path=tmp_path / f"services-{len(started)}.log",
        )
        started.append(services)
        return await services.start()

    yield start
    for services in started:
        await services.stop()


@pytest.fixture
async def dev_issuer():
    """Factory: `issuer = await dev_issuer(lifetime=...)`, the development issuer as a process of its own;
    stopped after the test."""
    started: list[DevIssuer] = []

    async def start(**options) -> DevIssuer:
        started.append(DevIssuer(**options))
        return await started[-1].start()

    yield start
    for issuer in started:
        issuer.stop()


@pytest.fixture
async def own_issuer(aiohttp_server) -> OwnIssuer:
    """An issuer made of the test's own keys, serving its JWKS on a real port (`own_issuer.down = True`
    makes it answer 503)."""
    issuer = OwnIssuer()
    server = await aiohttp_server(issuer.app())
    issuer.url = str(server.make_url("")).rstrip("/")
    return issuer


@pytest.fixture(scope="session")
def podman() -> Podman:
    """Podman with the suite's own settings and infra/Dockerfile's base images in its store (made once from
    Debian, then cached); skips where podman cannot run here."""
    try:
        return prepared_podman()
    except PodmanUnavailable as exc:
        pytest.skip(f"containers: {exc}")


@pytest.fixture(scope="session")
def project_image(podman) -> str:
    """The project's image, built with podman as docker-compose.yml builds it, once a session; removed after
    with its build layers."""
    run_id = unique("img")
    image = build_project_image(podman, run_id)
    yield image
    podman.remove_test_objects(run_id, [image])
