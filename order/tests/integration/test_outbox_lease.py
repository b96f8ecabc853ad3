"""A new order's event is leased to the process that wrote it and published by it straight after the commit;
what that process cannot publish goes back to any relay's claim, at once or when the lease runs out."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from conftest import broker_connected, make_settings
from order import events, repository
from order.app import create_app as create_order_app
from order.keys import ORDER_IDS, OUTBOX
from order.models import OutboxEvent
from order.outbox import NOTIFY_CHANNEL
from order.outbox.store import Lease
from order.repository import NewOrder
from order.settings import OrderSettings
from shared.db import asyncpg_dsn, use_app_orm
from shared.testing.api import create_customer, get_json
from shared.testing.plugin import eventually


def order_body(customer_id: int) -> dict:
    return {"order": {"customer_id": customer_id, "product_name": "Laptop", "quantity": 1, "price": "10.00"}}


async def count_is(customer_api, customer_id: int, expected: int) -> None:
    assert (await get_json(customer_api, f"/customers/{customer_id}"))["orders_count"] == expected


async def order_app(aiohttp_client, test_run, customer_server, **overrides):
    settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=str(customer_server.make_url("")),
        **overrides,
    )
    client = await aiohttp_client(await create_order_app(settings))
    await broker_connected(client.app)
    return client


async def write_leased_order(client, customer_id: int, lease: Lease | None) -> NewOrder:
    """What a handler stores for a new order, without handing the event to the relay: the state a worker
    that died (or hung) right after its commit leaves behind."""
    placed_at = datetime.now(UTC)
    use_app_orm(client.app)
    order = NewOrder(
        id=await client.app[ORDER_IDS].next(),
        customer_id=customer_id,
        product_name="Laptop",
        quantity=1,
        price=Decimal("10.00"),
        status="created",
        created_at=placed_at,
        updated_at=placed_at,
    )
    await repository.add_order(order, events.order_created(order, "test"), None, lease)
    return order


async def live_owner(client) -> int:
    """The app's relay's liveness lock, once its session holds it."""

    async def held():
        assert client.app[OUTBOX].lease() is not None

    await eventually(held)
    return client.app[OUTBOX].lease().owner


async def test_an_event_leased_to_a_live_worker_that_never_sends_it_goes_out_once_its_lease_runs_out(
    aiohttp_client, test_run, customer_server, customer_api, event_tap
):
    # This process's relay sweeps ten times a second: it must still leave the leased row alone until it expires.
    client = await order_app(aiohttp_client, test_run, customer_server, outbox_sweep_interval=0.1)
    customer = await create_customer(customer_api)
    order = await write_leased_order(client, customer["id"], Lease(2.0, await live_owner(client)))
    use_app_orm(client.app)
    leased_until = (await OutboxEvent.get(order_id=order.id)).leased_until
    assert leased_until is not None

    while (leased_until - datetime.now(UTC)).total_seconds() > 0.3:  # until shortly before the lease ends
        use_app_orm(client.app)
        assert await OutboxEvent.exists(order_id=order.id)  # no claim takes it
        await asyncio.sleep(0.05)

    await eventually(lambda: count_is(customer_api, customer["id"], 1), timeout=10)
    published = [body for body in event_tap.bodies("order.created") if body["data"]["order_id"] == order.id]
    assert len(published) == 1


async def test_events_the_relay_could_not_publish_go_back_to_the_claim_before_their_lease_ends(
    aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    proxy = await tcp_proxy("127.0.0.1", 5672)
    client = await order_app(
        aiohttp_client,
        test_run,
        customer_server,
        amqp_url=proxy.url("amqp://guest:guest@127.0.0.1:{port}/"),
        outbox_confirm_timeout=2.0,
        outbox_lease=600.0,
    )
    customer = await create_customer(customer_api)
    proxy.freeze()  # the link still looks up: the next order's event is leased and its publish hangs
    response = await client.post("/orders", json=order_body(customer["id"]))
    assert response.status == 201
    order_id = (await response.json())["id"]
    use_app_orm(client.app)
    assert (await OutboxEvent.get(order_id=order_id)).leased_until is not None

    async def given_back():
        use_app_orm(client.app)
        assert (await OutboxEvent.get(order_id=order_id)).leased_until is None

    await eventually(given_back, timeout=10)  # after the confirm timeout, not ten minutes
    await proxy.restore()
    await eventually(lambda: count_is(customer_api, customer["id"], 1), timeout=20)
    use_app_orm(client.app)
    await eventually(lambda: _gone(order_id), timeout=10)


async def _gone(order_id: int) -> None:
    assert not await OutboxEvent.exists(order_id=order_id)


async def test_only_events_left_to_the_claim_notify_the_relays(aiohttp_client, test_run, customer_server, customer_api):
    """A leased event is its own process's to publish: waking every relay for it would only cost them a claim."""
    client = await order_app(aiohttp_client, test_run, customer_server)
    customer = await create_customer(customer_api)
    listener = await asyncpg.connect(asyncpg_dsn(test_run.order_db))
    payloads: list[str] = []
    fenced = asyncio.Event()

    def heard(_conn, _pid, _channel, payload: str) -> None:
        if payload == "fence":
            fenced.set()
        else:
            payloads.append(payload)

    try:
        await listener.add_listener(NOTIFY_CHANNEL, heard)
        await write_leased_order(client, customer["id"], Lease(600.0, await live_owner(client)))
        await write_leased_order(client, customer["id"], None)
        # Notifications arrive in commit order: once this later one is heard, both writes' would have been.
        await listener.execute(f"NOTIFY {NOTIFY_CHANNEL}, 'fence'")
        async with asyncio.timeout(10):
            await fenced.wait()
        assert len(payloads) == 1  # the unleased write's only
    finally:
        await listener.close()


async def test_the_events_of_a_worker_that_died_go_out_at_the_next_sweep_not_when_their_lease_ends(
    aiohttp_client, test_run, customer_server, customer_api, event_tap
):
    """A lease holds only while its worker's liveness lock does: a killed worker's session ends with it."""
    client = await order_app(aiohttp_client, test_run, customer_server, outbox_sweep_interval=0.2)
    customer = await create_customer(customer_api)
    dead_owner = await live_owner(client) + 1  # a key no session holds
    order = await write_leased_order(client, customer["id"], Lease(600.0, dead_owner))

    await eventually(lambda: count_is(customer_api, customer["id"], 1), timeout=10)  # not ten minutes
    published = [body for body in event_tap.bodies("order.created") if body["data"]["order_id"] == order.id]
    assert len(published) == 1
