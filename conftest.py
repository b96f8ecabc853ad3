"""System fixtures: each service's app, on the test run's own databases and broker names."""

import asyncio

import pytest
from aiohttp.test_utils import TestServer
from xdist.scheduler import LoadScopeScheduling

from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from order.app import create_app as create_order_app
from order.asyncapi import order_asyncapi
from order.settings import OrderSettings
from shared.amqp import BROKER
from shared.testing.contracts import undocumented
from shared.testing.issuers import IssuerEndpoints
from shared.testing.plugin import eventually

# Test files whose tests run on one pytest-xdist worker, together: the container files share the session's
# project image (built once per worker), test_cli_errors.py a module fixture that runs every command line.
ONE_WORKER = {
    "tests/test_compose_stack.py": "project image",
    "tests/test_container_image.py": "project image",
    "tests/test_cli_errors.py": "cli errors",
}


class TestsAndGroups(LoadScopeScheduling):
    """Each test to the next free worker, except the files of a group, which go to one worker as one unit
    (the largest first). It does what `--dist loadgroup` with `xdist_group` marks would, which pytest 9
    no longer honours (xdist's group suffix on the node id is lost)."""

    def _split_scope(self, nodeid: str) -> str:
        return ONE_WORKER.get(nodeid.split("::", 1)[0], nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return TestsAndGroups(config, log)


# One event loop holds the test and both services in process: its lag is no one service's, and a test's
# burst of hundreds of requests is not a traffic spike to shed. Admission tests set their own limits.
IN_PROCESS_ADMISSION = {"admission_max_loop_lag": 5.0, "admission_burst": 5.0}
# The suite's apps check no token unless a test says otherwise (shared/tests/test_auth*.py do).
AUTH_OFF = {"auth_mode": "off"}


def make_settings(cls, test_run, **overrides):
    topology = {"events_exchange": test_run.exchange}
    if cls is CustomerSettings:  # its queues are the customer service's settings
        topology |= {"orders_queue": test_run.queue, "retry_delays": test_run.retry_delays}
        overrides = {"ops_allow_unauthenticated": True, **overrides}  # as make run: /ops/ with auth off
    return cls(**topology, **{**IN_PROCESS_ADMISSION, **AUTH_OFF, **overrides})


@pytest.fixture
async def event_tap(event_tap, test_run):
    """The plugin's tap; at the end of the test, every event it saw is checked against the order service's
    AsyncAPI document (the contract enforced on what is really published, not only on the model)."""
    yield event_tap
    document = order_asyncapi(OrderSettings.model_construct(events_exchange=test_run.exchange))
    assert undocumented(document, event_tap.messages) == []


@pytest.fixture
def customer_settings(test_run) -> CustomerSettings:
    return make_settings(CustomerSettings, test_run, database_url=test_run.customer_db)


async def broker_connected(app):
    """Wait (bounded) until the app's broker link is up: its queues are declared and it consumes."""
    async with asyncio.timeout(10):
        await app[BROKER].wait_up()
    return app


async def broker_lost(app) -> None:
    """Wait (bounded) until the app has seen its broker link go (after a proxy cut, say)."""

    async def link_down():
        assert not app[BROKER].is_up

    await eventually(link_down, timeout=10)


async def dead_letter_rows(client, expected: int, timeout: float = 10.0, **filters) -> list[dict]:
    """The dead letters matching `filters` (through /ops/dead-letters), once there are `expected` of them."""
    rows: list[dict] = []

    async def arrived():
        response = await client.get("/ops/dead-letters", params={"limit": "200", **filters})
        assert response.status == 200, await response.text()
        rows[:] = (await response.json())["items"]
        assert len(rows) == expected, rows

    await eventually(arrived, timeout=timeout)
    return rows


async def dead_letter_details(client, expected: int, match, timeout: float = 10.0) -> list[dict]:
    """Each dead letter (in full: body, headers, history) for which `match(detail)` holds, once there are
    `expected`; for tests that share the run's database with others."""
    found: list[dict] = []

    async def arrived():
        response = await client.get("/ops/dead-letters", params={"limit": "200"})
        assert response.status == 200, await response.text()
        found.clear()
        for row in (await response.json())["items"]:
            detail = await (await client.get(f"/ops/dead-letters/{row['id']}")).json()
            if match(detail):
                found.append(detail)
        assert len(found) == expected, found

    await eventually(arrived, timeout=timeout)
    return found


@pytest.fixture
async def customer_client(aiohttp_client, customer_settings):
    client = await aiohttp_client(await create_customer_app(customer_settings))
    await broker_connected(client.app)
    return client


@pytest.fixture
def order_settings(test_run, customer_server) -> OrderSettings:
    # A generous timeout: on a busy 2-core machine the in-process customer service can be slow under a burst.
    return make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=str(customer_server.make_url("")),
        customer_service_timeout=10,
    )


@pytest.fixture
async def customer_server(aiohttp_server, customer_settings):
    """The real customer service on a real port, as the order service calls it."""
    server = await aiohttp_server(await create_customer_app(customer_settings))
    await broker_connected(server.app)
    return server


@pytest.fixture
async def customer_api(aiohttp_client, customer_server):
    """A client of that same customer service instance."""
    return await aiohttp_client(customer_server)


async def order_client_via(aiohttp_client, test_run, customer_server, broker_proxy, **more):
    """An order service whose broker connection goes through `broker_proxy`, up and connected."""
    settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=str(customer_server.make_url("")),
        amqp_url=broker_proxy.url("amqp://guest:guest@127.0.0.1:{port}/"),
        **more,
    )
    client = await aiohttp_client(await create_order_app(settings))
    await broker_connected(client.app)
    return client


@pytest.fixture
async def order_client(aiohttp_client, order_settings):
    client = await aiohttp_client(await create_order_app(order_settings))
    await broker_connected(client.app)
    return client


# The order service's own client at the issuers of the tests (the development issuer's default; the tests'
# own issuer takes any secret).
ORDER_CLIENT = {"client_id": "order-service", "client_secret": "order-service-secret"}


async def secured_services(
    aiohttp_server, test_run, issuer: IssuerEndpoints, **order_more
) -> tuple[TestServer, TestServer]:
    """Both services checking the tokens of `issuer` (AUTH_MODE=jwt, as they run by default), the order
    service signing in to it as its client; (customer, order) servers, up and connected to the broker."""
    auth = issuer.service_settings()
    customer_settings = make_settings(CustomerSettings, test_run, database_url=test_run.customer_db, **auth)
    customers = await aiohttp_server(await create_customer_app(customer_settings))
    await broker_connected(customers.app)
    order_settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=str(customers.make_url("")),
        customer_service_timeout=10,
        auth_token_url=issuer.token_url,
        **{**auth, **ORDER_CLIENT, **order_more},
    )
    orders = await aiohttp_server(await create_order_app(order_settings))
    await broker_connected(orders.app)
    return customers, orders
