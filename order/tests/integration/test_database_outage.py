"""The order database is cut in the middle of a load: clean 503s, no order without its event or the reverse."""

import asyncio

from conftest import broker_connected, make_settings
from order.app import create_app
from order.models import Order, OutboxEvent
from order.settings import OrderSettings
from shared.db import use_app_orm
from shared.testing.api import create_customer, get_json
from shared.testing.plugin import eventually


async def test_a_database_cut_mid_load_leaves_no_half_written_order(
    aiohttp_client, test_run, tcp_proxy, customer_server, customer_api
):
    proxy = await tcp_proxy("127.0.0.1", 5432)
    settings = make_settings(
        OrderSettings,
        test_run,
        customer_service_url=str(customer_server.make_url("")),
        database_url=test_run.order_db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"),
    )
    client = await aiohttp_client(await create_app(settings))
    await broker_connected(client.app)
    customer = await create_customer(customer_api)
    body = {"order": {"customer_id": customer["id"], "product_name": "Lamp", "quantity": 1, "price": 5}}
    statuses: list[int] = []

    async def place_orders():
        for _ in range(15):
            response = await client.post("/orders", json=body)
            assert "Traceback" not in await response.text()
            statuses.append(response.status)

    load = [asyncio.create_task(place_orders()) for _ in range(8)]
    await eventually(lambda: _at_least(statuses, 20))
    await proxy.cut()
    await eventually(lambda: _count(statuses, 503, 1))
    await proxy.restore()
    await asyncio.gather(*load)

    assert set(statuses) <= {201, 503} and statuses.count(201) >= 20
    use_app_orm(client.app)
    orders = await Order.filter(customer_id=customer["id"]).values_list("id", flat=True)
    assert len(orders) >= statuses.count(201)  # a commit whose answer was lost still counts below

    async def all_counted():
        # Exactly one order.created per stored order reached the consumer: no order without its event,
        # no event without its order (the outbox drained, so nothing more is on its way).
        use_app_orm(client.app)
        assert not await OutboxEvent.filter(order_id__in=orders).exists()
        assert (await get_json(customer_api, f"/customers/{customer['id']}"))["orders_count"] == len(orders)

    await eventually(all_counted, timeout=20)


async def _at_least(items: list, n: int) -> bool:
    return len(items) >= n


async def _count(items: list, value: int, n: int) -> bool:
    return items.count(value) >= n
