"""The outbox at size: a large backlog drains exactly, in per-order order; the claim's cost is its batch's."""

import json

import asyncpg
import orjson
from tortoise.connection import get_connection
from tortoise.context import TortoiseContext

from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from order.app import create_app as create_order_app
from order.db_config import APP, order_orm_config
from order.outbox.store import CLAIM_BATCH
from order.settings import OrderSettings
from shared.db import use_app_orm
from shared.housekeeping import vacuum
from shared.testing.api import create_customer, get_json
from shared.testing.plugin import eventually
from shared.testing.runs import aiormq_channel, bulk_connection

BACKLOG = 20_000
WITH_HISTORY = 2_000  # orders that also have two status changes queued behind their creation

# n orders over the customers, each with its order.created; the first `changed` get paid and shipped too.
WRITE_BACKLOG = """
WITH new_orders AS (
    INSERT INTO orders (customer_id, product_name, quantity, price, status, created_at, updated_at)
    SELECT ($1::int[])[1 + (g % cardinality($1::int[]))], 'Backlog', 1, 1.00, 'created', now(), now()
    FROM generate_series(1, $2::int) g RETURNING id, customer_id, created_at
), events AS (
    SELECT o.id AS order_id, o.customer_id, o.created_at, k.step, k.type, k.status, k.previous
    FROM new_orders o CROSS JOIN (VALUES (0, 'order.created', 'created', NULL),
                                         (1, 'order.status_changed', 'paid', 'created'),
                                         (2, 'order.status_changed', 'shipped', 'paid')) k(step, type, status, previous)
    WHERE k.step = 0 OR o.id < (SELECT min(id) FROM new_orders) + $3
), numbered AS (SELECT e.*, gen_random_uuid() AS event_id FROM events e ORDER BY step, order_id)
INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts)
SELECT event_id, type, order_id, json_build_object(
    'schema_version', 1, 'event_id', event_id, 'event_type', type, 'occurred_at', to_json(created_at),
    'data', json_strip_nulls(json_build_object('order_id', order_id, 'customer_id', customer_id,
                                               'status', status, 'previous_status', previous)))::text,
    'backlog', created_at, 0
FROM numbered ORDER BY step, order_id
"""


async def _run_apps(aiohttp_client, aiohttp_server, run):
    customer = await aiohttp_server(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db))
    )
    await broker_connected(customer.app)
    order = await aiohttp_client(
        await create_order_app(
            make_settings(
                OrderSettings, run, database_url=run.order_db, customer_service_url=str(customer.make_url(""))
            )
        )
    )
    await broker_connected(order.app)
    return customer, order


async def test_a_backlog_of_20000_events_drains_with_exact_counts_and_each_orders_events_in_order(
    aiohttp_client, aiohttp_server, scratch_run
):
    run = scratch_run()
    customer_server, order_client = await _run_apps(aiohttp_client, aiohttp_server, run)
    customer_api = await aiohttp_client(customer_server)
    customers = [(await create_customer(customer_api))["id"] for _ in range(20)]
    tap: list[dict] = []
    async with aiormq_channel() as channel:
        queue = (await channel.queue_declare("", exclusive=True, auto_delete=True)).queue
        await channel.queue_bind(queue, run.exchange, routing_key="#")
        await channel.basic_consume(queue, lambda m: tap.append(orjson.loads(m.body)), no_ack=True)

        orders = await bulk_connection(run.order_db)
        try:
            await orders.execute(WRITE_BACKLOG, customers, BACKLOG, WITH_HISTORY)
        finally:
            await orders.close()

        async def all_counted():
            counts = [(await get_json(customer_api, f"/customers/{cid}"))["orders_count"] for cid in customers]
            assert sum(counts) == BACKLOG
            assert counts == [BACKLOG // len(customers)] * len(customers)

        await eventually(all_counted, timeout=120, interval=0.5)
        await eventually(lambda: _tapped(tap, BACKLOG + 2 * WITH_HISTORY), timeout=30)

    by_order: dict[int, list[str]] = {}
    for body in tap:
        by_order.setdefault(body["data"]["order_id"], []).append(body["data"]["status"])
    assert len(by_order) == BACKLOG
    changed = [statuses for statuses in by_order.values() if len(statuses) > 1]
    assert len(changed) == WITH_HISTORY
    assert all(statuses == ["created", "paid", "shipped"] for statuses in changed)  # written order kept
    use_app_orm(order_client.app)
    await eventually(_outbox_empty)  # every event confirmed, so every row gone


async def _outbox_empty() -> None:
    _, rows = await get_connection(APP).execute_query("SELECT count(*) AS n FROM outbox")
    assert rows[0]["n"] == 0


async def _tapped(tap: list, n: int) -> None:
    assert len(tap) >= n


def _scans(plan: dict) -> list[dict]:
    found = [plan] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


async def _explain_claim(conn: asyncpg.Connection, batch: int) -> dict:
    transaction = conn.transaction()
    await transaction.start()
    try:
        (plan,) = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {CLAIM_BATCH}", batch))
    finally:
        await transaction.rollback()  # the claim locks its rows
    return plan


async def test_the_claim_touches_only_what_it_claims_with_a_large_backlog_history_and_no_statistics(scratch_run):
    """200,000 pending rows behind 200,000 already sent (deleted, their dead tuples left as autovacuum-off
    leaves them), never analyzed: the claim reads its batch, not the backlog or the history."""
    run = scratch_run()
    conn = await bulk_connection(run.order_db)
    try:
        await conn.execute(WRITE_BACKLOG, [1], 200_000, 0)
        await conn.execute("DELETE FROM outbox")  # sent: deleted, as the relay does
        await conn.execute(WRITE_BACKLOG, [1], 200_000, 1_000)
        assert await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'outbox'") <= 0  # no statistics

        # The service's own vacuum (order/housekeeping.py) is what clears the dead entries of the history.
        # (No service runs here: its relay would drain the backlog under the EXPLAIN.)
        orm = TortoiseContext()
        with orm:
            await orm.init(config=order_orm_config(run.order_db))
            try:
                await vacuum(APP, "outbox")
            finally:
                await orm.close_connections()

        batch = 500
        for _ in range(2):  # and the same on a second look
            plan = (await _explain_claim(conn, batch))["Plan"]
            assert plan["Actual Rows"] <= batch
            for scan in _scans(plan):
                assert scan["Actual Rows"] * scan["Actual Loops"] <= 2 * batch, scan["Node Type"]
            buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
            assert buffers <= 6 * batch, buffers  # a few index and heap pages per claimed row, not the history
    finally:
        await conn.close()


async def test_a_drained_backlog_is_vacuumed_at_once_not_at_the_next_interval(
    aiohttp_client, test_run, customer_server
):
    """Until a vacuum, every claim steps over a drained backlog's dead index entries."""
    conn = await bulk_connection(test_run.order_db)
    try:
        vacuums_before = await conn.fetchval("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'")
        async with conn.transaction():  # 12,000 events written and sent: dead rows, as a drain leaves them
            await conn.execute(
                "INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts) "
                "SELECT gen_random_uuid(), 'order.created', g, '{}', 'drained', now(), 0 "
                "FROM generate_series(1, 12000) g"
            )
            await conn.execute("DELETE FROM outbox WHERE request_id = 'drained'")
    finally:
        await conn.close()  # its statistics reach the server as it ends
    settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=str(customer_server.make_url("")),
        outbox_vacuum_interval=3600,  # so only the dead rows can be the reason
    )
    client = await aiohttp_client(await create_order_app(settings))

    async def vacuumed():
        use_app_orm(client.app)
        _, rows = await get_connection(APP).execute_query(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'"
        )
        assert rows[0]["vacuum_count"] > vacuums_before

    await eventually(vacuumed, timeout=20)
