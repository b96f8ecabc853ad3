"""Admission control and gone clients: refuse early, change nothing, keep the operational routes up."""

import asyncio

import aiohttp
import pytest
from aiohttp import web

from conftest import broker_connected, make_settings
from order.app import create_app as create_order_app
from order.models import IdempotencyKey, Order
from order.settings import OrderSettings
from shared.admission import ABANDONED, REFUSED
from shared.db import use_app_orm
from shared.testing.api import assert_problem, create_customer
from shared.testing.plugin import eventually, unique


def order_body(customer_id: int) -> dict:
    return {"order": {"customer_id": customer_id, "product_name": "Laptop", "quantity": 1, "price": "10.00"}}


async def order_server(aiohttp_server, test_run, customer_server, tcp_proxy, **overrides):
    """The order service, calling the customer service through a proxy the test can freeze."""
    proxy = await tcp_proxy("127.0.0.1", customer_server.port)
    settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=f"http://127.0.0.1:{proxy.port}",
        **overrides,
    )
    server = await aiohttp_server(await create_order_app(settings))
    await broker_connected(server.app)
    return server, proxy


async def warm_up(client, customer_id: int, connections: int) -> None:
    """Orders placed at once, so the order service keeps that many connections to the customer service
    open: a frozen proxy holds their traffic and lets it through when restored (a connection opened
    while frozen never would)."""
    responses = await asyncio.gather(
        *(client.post("/orders", json=order_body(customer_id)) for _ in range(connections))
    )
    assert [r.status for r in responses] == [201] * connections


async def orders_of(server, customer_id: int) -> int:
    use_app_orm(server.app)
    return await Order.filter(customer_id=customer_id).count()


async def test_requests_beyond_the_limit_get_503_with_retry_after_and_change_nothing(
    aiohttp_server, aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    server, proxy = await order_server(
        aiohttp_server,
        test_run,
        customer_server,
        tcp_proxy,
        admission_max_in_flight=2,
        admission_max_queue=1,
        admission_queue_timeout=0.2,
        customer_service_timeout=10,
    )
    client = await aiohttp_client(server)
    customer = await create_customer(customer_api)
    await warm_up(client, customer["id"], 2)
    refused_before = sum(REFUSED.labels(r)._value.get() for r in ("queue_full", "queue_timeout"))

    proxy.freeze()  # the customer service hangs: two requests hold the two slots
    held = [asyncio.create_task(client.post("/orders", json=order_body(customer["id"]))) for _ in range(2)]

    async def slots_taken():
        metrics = await (await client.get("/metrics")).text()
        assert "http_requests_in_flight 2.0" in metrics

    await eventually(slots_taken)
    # The operational routes answer while the service is saturated.
    assert (await client.get("/health")).status == 200
    assert (await client.get("/ready")).status == 200

    refused = await asyncio.gather(*(client.post("/orders", json=order_body(customer["id"])) for _ in range(5)))
    for response in refused:
        await assert_problem(response, 503)
        assert response.headers["Retry-After"] == "1"
    assert await orders_of(server, customer["id"]) == 2  # nothing stored for them (2: the warm-up)

    await proxy.restore()
    assert [r.status for r in await asyncio.gather(*held)] == [201, 201]
    assert await orders_of(server, customer["id"]) == 4
    refused_after = sum(REFUSED.labels(r)._value.get() for r in ("queue_full", "queue_timeout"))
    assert refused_after - refused_before == 5
    metrics = await (await client.get("/metrics")).text()
    for series in ("http_requests_refused_total", "http_requests_in_flight", "http_request_queue_seconds_bucket"):
        assert series in metrics


@pytest.fixture
async def production_runner():
    """Serves an app as gunicorn's aiohttp worker does: handlers are not cancelled when a client goes
    (the test server cancels them), so what the service itself does about a gone client shows."""
    runners = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, handler_cancellation=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield serve
    for runner in runners:
        await runner.cleanup()


async def test_a_client_that_disconnects_mid_request_leaves_nothing_and_no_claimed_key(
    production_runner, test_run, customer_server, customer_api, tcp_proxy
):
    proxy = await tcp_proxy("127.0.0.1", customer_server.port)
    app = await create_order_app(
        make_settings(
            OrderSettings,
            test_run,
            database_url=test_run.order_db,
            customer_service_url=f"http://127.0.0.1:{proxy.port}",
            customer_service_timeout=10,
        )
    )
    base = await production_runner(app)
    await broker_connected(app)
    customer = await create_customer(customer_api)
    key = unique("gone")
    abandoned_before = ABANDONED._value.get()
    async with aiohttp.ClientSession(base_url=base) as client:
        await warm_up(client, customer["id"], 1)

        proxy.freeze()  # the request waits on the customer service...
        async with aiohttp.ClientSession(base_url=base) as leaving:
            request = asyncio.create_task(
                leaving.post("/orders", json=order_body(customer["id"]), headers={"Idempotency-Key": key})
            )

            async def key_claimed():
                use_app_orm(app)
                assert await IdempotencyKey.exists(key=key)

            await eventually(key_claimed)
            request.cancel()  # ...and its client goes away
        await proxy.restore()  # the customer answers: the order service sees the client gone and stops

        async def stopped_and_released():
            assert ABANDONED._value.get() == abandoned_before + 1
            use_app_orm(app)
            assert not await IdempotencyKey.exists(key=key)

        await eventually(stopped_and_released, timeout=10)
        use_app_orm(app)
        assert await Order.filter(customer_id=customer["id"]).count() == 1  # the warm-up's only

        # The same key is free for the client's retry.
        async with client.post("/orders", json=order_body(customer["id"]), headers={"Idempotency-Key": key}) as retry:
            assert retry.status == 201
        use_app_orm(app)
        assert await Order.filter(customer_id=customer["id"]).count() == 2
