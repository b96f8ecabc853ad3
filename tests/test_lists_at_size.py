"""Lists at size: a first page, a filtered page and a page 100,000 rows deep each read in the order of an index
from where the page starts, with the statistics absent (autovacuum off, never analyzed) and fresh: what they
read is bounded by the page, not by the table or the depth. (With fresh statistics the planner may read a
common status through the whole list's index, stepping over the other statuses: a few pages' worth.)"""

import json
from datetime import datetime

import asyncpg
import pytest

from customer.repository import customers_page
from order.db_config import order_orm_config
from order.models import Order
from order.repository import READ_IN_INDEX_ORDER, orders_page
from shared.db import orm_session
from shared.testing.runs import bulk_connection

ORDERS = 200_000
CUSTOMERS = 100_000
LIMIT = 51  # a page of 50 and the row that tells whether another follows
DEEP = 100_000

FILL_ORDERS = f"""
INSERT INTO orders (customer_id, product_name, quantity, price, status, created_at, updated_at)
SELECT 1 + g % 20000, 'Laptop', 1, 10.00, (ARRAY['created', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + g % 5],
       timestamptz '2026-01-01' + g * interval '1 second', now()
FROM generate_series(1, {ORDERS}) g
"""
FILL_CUSTOMERS = f"""
INSERT INTO customers (name, address, email, orders_count, created_at, updated_at)
SELECT 'Ada', 'London', NULL, 0, timestamptz '2026-01-01' + g * interval '1 second', now()
FROM generate_series(1, {CUSTOMERS}) g
"""


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def explain(conn: asyncpg.Connection, sql: str, *args, setting: str | None = None) -> dict:
    """The plan of `sql` as the service runs it (in a transaction with `setting`, where it sets one)."""
    async with conn.transaction():
        if setting:
            await conn.execute(setting)
        (result,) = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args))
    return result["Plan"]


def assert_reads_only_its_page(plan: dict, what: str, skipped: int = 0) -> None:
    """Reads bounded by the page and the rows an offset skips, whatever it sorts (a Sort can only sort what
    was read)."""
    for node in nodes(plan):
        if "Scan" in node["Node Type"]:
            read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            assert read <= skipped + 10 * LIMIT, f"{what}: {node['Node Type']} read {read} rows"
    buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert buffers <= skipped + 10 * LIMIT, f"{what}: {buffers} buffers"


@pytest.mark.parametrize("statistics", ["absent", "fresh"])
async def test_every_list_page_reads_only_its_own_rows_at_any_depth(scratch_run, statistics):
    run = scratch_run()
    orders = await bulk_connection(run.order_db)
    customers = await bulk_connection(run.customer_db)
    try:
        await orders.execute(FILL_ORDERS)
        await customers.execute(FILL_CUSTOMERS)
        if statistics == "fresh":
            await orders.execute("ANALYZE orders")
            await customers.execute("ANALYZE customers")
        else:
            assert await orders.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'orders'") <= 0

        deep_order = await orders.fetchrow(
            f"SELECT created_at, id FROM orders ORDER BY created_at DESC, id DESC OFFSET {DEEP} LIMIT 1"
        )
        deep = (deep_order["created_at"], deep_order["id"])
        pages = {  # customer, status, offset, position
            "first page": (None, None, 0, None),
            "by customer": (20, None, 0, None),
            "by status": (None, "paid", 0, None),
            "by status, 5,000 in": (None, "paid", 5000, None),
            "by cursor, 100,000 deep": (None, None, 0, deep),
            "by status and cursor, deep": (None, "paid", 0, deep),
            "by customer and cursor": (20, None, 0, deep),
        }
        for what, (customer_id, status, offset, after) in pages.items():
            sql, values = orders_page(customer_id, status, after)
            # As order.repository.list_orders runs them: the setting only past a status's first page.
            setting = READ_IN_INDEX_ORDER if status is not None and (offset or after) else None
            plan = await explain(orders, sql, LIMIT, offset, *values, setting=setting)
            assert_reads_only_its_page(plan, f"orders {what}", skipped=offset)
        async with orm_session(order_orm_config(run.order_db)):
            count_customer = Order.filter(customer_id=20).count().sql(params_inline=True)  # as count_matching

        # A customer's count (what GET /orders?customer_id= shows when its orders fill more than a page)
        # reads that customer's rows only; a status's count costs in proportion to its rows, as documented.
        assert_reads_only_its_page(await explain(orders, count_customer), "orders count by customer")

        deep_customer = (datetime.fromisoformat("2026-01-01T00:00:00+00:00").replace(day=2), CUSTOMERS)
        assert_reads_only_its_page(await explain(customers, customers_page(False), LIMIT, 0), "customers first page")
        assert_reads_only_its_page(
            await explain(customers, customers_page(True), LIMIT, 0, *deep_customer), "customers by cursor"
        )
    finally:
        await orders.close()
        await customers.close()
