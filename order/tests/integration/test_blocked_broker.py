"""A broker that blocks its publishers (a memory or disk alarm): the relay waits holding nothing, then resumes."""

import asyncpg

from conftest import order_client_via
from order.metrics import RELAY_WAITING
from shared.db import asyncpg_dsn
from shared.testing.api import assert_problem, becomes_ready, create_customer, get_json
from shared.testing.plugin import eventually
from shared.testing.proxy import AmqpProxy


def order_body(customer_id: int) -> dict:
    return {"order": {"customer_id": customer_id, "product_name": "Laptop", "quantity": 1, "price": "10.00"}}


async def open_transactions(order_db: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(order_db))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND xact_start IS NOT NULL"
        )
    finally:
        await conn.close()


async def test_the_relay_under_a_blocked_broker_holds_no_transaction_and_loses_nothing(
    aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    proxy = await tcp_proxy("127.0.0.1", 5672, kind=AmqpProxy)
    client = await order_client_via(aiohttp_client, test_run, customer_server, proxy)
    customer = await create_customer(customer_api)

    async def count_is(n: int) -> None:
        assert (await get_json(customer_api, f"/customers/{customer['id']}"))["orders_count"] == n

    assert (await client.post("/orders", json=order_body(customer["id"]))).status == 201
    await eventually(lambda: count_is(1))

    await proxy.block()
    for _ in range(20):  # still 201: the events wait in the outbox
        assert (await client.post("/orders", json=order_body(customer["id"]))).status == 201
    await assert_problem(await client.get("/ready"), 503, field="broker")

    async def waiting_with_nothing_open():
        assert RELAY_WAITING.labels("blocked")._value.get() == 1
        assert await open_transactions(test_run.order_db) == 0

    await eventually(waiting_with_nothing_open, timeout=15)
    await count_is(1)

    await proxy.unblock()
    await eventually(lambda: count_is(21), timeout=20)
    assert RELAY_WAITING.labels("blocked")._value.get() == 0
    await becomes_ready(client)
