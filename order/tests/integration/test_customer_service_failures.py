"""POST /orders when the customer service is down, slow or failing: 503, nothing stored, nothing published."""

import asyncio

import pytest
from aiohttp import web
from tortoise.connection import get_connection

from conftest import make_settings
from order.app import create_app as create_order_app
from order.db_config import APP
from order.keys import CUSTOMERS
from order.models import Order
from order.settings import OrderSettings
from shared.db import use_app_orm
from shared.testing.api import assert_problem, create_customer
from shared.testing.plugin import eventually

BODY = {"order": {"customer_id": 1, "product_name": "Laptop", "quantity": 1, "price": 1200}}


async def counts(client) -> tuple[int, int]:
    """Orders stored, and outbox rows ever written (the relay deletes what it sent, the sequence stays)."""
    use_app_orm(client.app)
    _, rows = await get_connection(APP).execute_query(
        "SELECT last_value FROM pg_sequences WHERE sequencename = 'outbox_id_seq'"
    )
    return await Order.all().count(), rows[0]["last_value"]


async def order_client_for(aiohttp_client, test_run, customer_url: str, timeout: float = 2.0, **more):
    settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=customer_url,
        customer_service_timeout=timeout,
        **more,
    )
    return await aiohttp_client(await create_order_app(settings))


async def fake_customer_service(aiohttp_server, handler):
    app = web.Application()
    app.router.add_get(r"/customers/{id:\d+}", handler)
    return await aiohttp_server(app)


async def test_customer_service_down_is_503_and_stores_nothing(aiohttp_client, test_run, tcp_proxy):
    proxy = await tcp_proxy("127.0.0.1", 9)  # nothing listens behind it
    await proxy.cut()
    client = await order_client_for(aiohttp_client, test_run, proxy.url("http://127.0.0.1:{port}"))
    before = await counts(client)
    response = await client.post("/orders", json=BODY)
    problem = await assert_problem(response, 503)
    assert "customer service" in problem["detail"].lower()
    assert response.headers["Retry-After"] == "1"  # a well-behaved client knows when to try again
    assert await counts(client) == before


async def test_a_full_customer_service_passes_its_retry_after_on(aiohttp_client, aiohttp_server, test_run):
    async def full(request):
        return web.json_response({"status": 503}, status=503, headers={"Retry-After": "7"})

    server = await fake_customer_service(aiohttp_server, full)
    client = await order_client_for(aiohttp_client, test_run, str(server.make_url("")))
    response = await client.post("/orders", json=BODY)
    await assert_problem(response, 503)
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_customer_service_5xx_is_503(aiohttp_client, aiohttp_server, test_run, status):
    async def failing(request):
        return web.json_response({"oops": True}, status=status)

    server = await fake_customer_service(aiohttp_server, failing)
    client = await order_client_for(aiohttp_client, test_run, str(server.make_url("")))
    before = await counts(client)
    await assert_problem(await client.post("/orders", json=BODY), 503)
    assert await counts(client) == before


async def test_slow_customer_service_is_503_within_the_timeout(aiohttp_client, aiohttp_server, test_run):
    release = asyncio.Event()

    async def hanging(request):
        await release.wait()
        return web.json_response({})

    server = await fake_customer_service(aiohttp_server, hanging)
    client = await order_client_for(aiohttp_client, test_run, str(server.make_url("")), timeout=0.3)
    before = await counts(client)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await assert_problem(await client.post("/orders", json=BODY), 503)
    assert loop.time() - started < 2.0  # bounded by the configured 0.3 s, not by the server
    release.set()
    assert await counts(client) == before


async def test_frozen_then_restored_customer_service_recovers(
    aiohttp_client, test_run, tcp_proxy, customer_server, customer_api
):
    customer = await create_customer(customer_api)
    proxy = await tcp_proxy("127.0.0.1", customer_server.port)
    client = await order_client_for(aiohttp_client, test_run, proxy.url("http://127.0.0.1:{port}"), timeout=0.3)
    body = {"order": {**BODY["order"], "customer_id": customer["id"]}}
    proxy.freeze()
    await assert_problem(await client.post("/orders", json=body), 503)
    await proxy.restore()
    response = await client.post("/orders", json=body)
    assert response.status == 201, await response.text()


async def hanging_customer_service(aiohttp_server) -> tuple[list[int], asyncio.Event, object]:
    """A customer service that takes requests and does not answer them until released: the calls it saw."""
    calls: list[int] = []
    release = asyncio.Event()

    async def hanging(request):
        calls.append(int(request.match_info["id"]))
        await release.wait()
        return web.json_response({"id": 1, "name": "A", "address": "B", "orders_count": 0})

    return calls, release, await fake_customer_service(aiohttp_server, hanging)


async def test_a_customer_service_that_does_not_answer_is_not_called_while_the_breaker_is_open(
    aiohttp_client, aiohttp_server, test_run
):
    calls, release, server = await hanging_customer_service(aiohttp_server)
    client = await order_client_for(
        aiohttp_client,
        test_run,
        str(server.make_url("")),
        timeout=0.3,
        customer_breaker_failures=2,
        customer_breaker_cooldown=600,
    )
    before = await counts(client)
    for _ in range(2):  # each waits for the timeout: the breaker is closed
        await assert_problem(await client.post("/orders", json=BODY), 503)
    assert len(calls) == 2
    for _ in range(5):  # the breaker is open: refused without a call
        response = await client.post("/orders", json=BODY)
        problem = await assert_problem(response, 503)
        assert "customer service" in problem["detail"].lower()
        assert 590 <= int(response.headers["Retry-After"]) <= 600  # the rest of the cool-down
    assert len(calls) == 2
    assert await counts(client) == before
    assert "customer_service_breaker_open 1.0" in await (await client.get("/metrics")).text()
    release.set()


async def test_after_the_cooldown_one_call_probes_and_the_rest_are_refused(aiohttp_client, aiohttp_server, test_run):
    calls, release, server = await hanging_customer_service(aiohttp_server)
    client = await order_client_for(
        aiohttp_client,
        test_run,
        str(server.make_url("")),
        timeout=1.0,
        customer_breaker_failures=1,
        customer_breaker_cooldown=0.2,
    )
    await assert_problem(await client.post("/orders", json=BODY), 503)  # opens the breaker
    breaker = client.app[CUSTOMERS].breaker
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while breaker.open_until is not None and breaker.open_until > loop.time():  # the cool-down ends
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    responses = await asyncio.gather(*(client.post("/orders", json=BODY) for _ in range(4)))
    assert [response.status for response in responses] == [503] * 4
    assert len(calls) == 2  # the first call, then one probe; the three beside it were refused at once
    release.set()


async def test_a_frozen_customer_service_opens_the_breaker_and_its_return_closes_it(
    aiohttp_client, test_run, tcp_proxy, customer_server, customer_api
):
    customer = await create_customer(customer_api)
    proxy = await tcp_proxy("127.0.0.1", customer_server.port)
    client = await order_client_for(
        aiohttp_client,
        test_run,
        proxy.url("http://127.0.0.1:{port}"),
        timeout=0.3,
        customer_breaker_failures=2,
        customer_breaker_cooldown=0.5,
    )
    body = {"order": {**BODY["order"], "customer_id": customer["id"]}}
    before = await counts(client)
    proxy.freeze()
    for _ in range(3):
        await assert_problem(await client.post("/orders", json=body), 503)
    assert "customer_service_breaker_open 1.0" in await (await client.get("/metrics")).text()
    await proxy.restore()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (response := await client.post("/orders", json=body)).status != 201:  # healed by itself
        assert response.status == 503 and loop.time() < deadline, await response.text()
        await asyncio.sleep(0.05)
    orders, _ = await counts(client)
    assert orders == before[0] + 1  # the refused POSTs stored nothing

    async def breaker_closed():  # /metrics answers are up to a second old
        assert "customer_service_breaker_open 0.0" in await (await client.get("/metrics")).text()

    await eventually(breaker_closed)
