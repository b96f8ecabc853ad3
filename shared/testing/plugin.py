"""pytest plugin with the helpers both services' suites use (loaded from pyproject's addopts).

Test databases and broker names are unique per run, created here and removed at the end
(shared/testing/runs.py), so the suite never touches the run databases or the run topology.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import aiormq
import orjson
import pytest

from shared.logs import RequestIdFilter
from shared.testing.issuers import DevIssuer, OwnIssuer
from shared.testing.podman import Podman, PodmanUnavailable
from shared.testing.processes import Services
from shared.testing.project_image import build_project_image, prepared_podman
from shared.testing.proxy import TcpProxy
from shared.testing.runs import AMQP_URL, TestRun, aiormq_channel, drop_run_databases, new_run, remove_runs


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


@pytest.fixture(scope="session")
def run_names() -> list[TestRun]:
    """Every run of this session (of this xdist worker): its databases and broker names go at the end, and
    the session fails if any of them is still there. Broker names wait for the end because a test's own
    teardown may run while its app still consumes, and a consumer whose queue is deleted declares it again."""
    runs: list[TestRun] = []
    yield runs
    asyncio.run(remove_runs(runs))


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
        await drop_run_databases(run)


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
