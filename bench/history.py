"""Ours only: the event path at size, and the same figures again after a long history.

1. Backlog drain: the bench restarts the system with the order service's broker connection through a
   TCP proxy it holds. The proxy is cut, N orders and their outbox rows are written straight into the
   order database (as N POSTs during an outage would leave them, only faster), the proxy is restored,
   and the bench times until every customer's `orders_count` is exact: events/s from the moment the
   relay is back on the broker (its reconnect backoff is reported apart). Then the system is restarted
   without the proxy: only this phase pays for a Python proxy on the broker path (it costs the machine
   about 0.15 ms of CPU per order and the event path a hop each way).
2. Aging: the POST load and the light-load lag run again on the same tables, now N orders, N deleted
   outbox rows and N processed events older, with autovacuum as the machine has it.
3. The relay and the consumer alone (bench/events.py).
"""

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from systems import AMQP_URL

from shared.testing.proxy import TcpProxy

INSERT_CHUNK = 20_000
DRAIN_DEADLINE = 600.0

# N orders spread over the customers, each with the outbox row the order service would have written.
BUILD_BACKLOG = """
WITH new_orders AS (
    INSERT INTO orders (customer_id, product_name, quantity, price, status, created_at, updated_at)
    SELECT ($1::int[])[1 + (g % cardinality($1::int[]))], 'Backlog', 1, 1.00, 'created', now(), now()
    FROM generate_series($2::int, $3::int) g
    RETURNING id, customer_id, created_at
)
INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts)
SELECT e.id, 'order.created', o.id,
       json_build_object(
           'schema_version', 1, 'event_id', e.id, 'event_type', 'order.created',
           'occurred_at', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           'data', json_build_object('order_id', o.id, 'customer_id', o.customer_id, 'product_name', 'Backlog',
                                     'quantity', 1, 'price', '1.00', 'status', 'created'))::text,
       'bench-backlog', o.created_at, 0
FROM new_orders o CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id, o.id AS per_order) e  -- one uuid per row
"""


async def broker_state(http: aiohttp.ClientSession, order_url: str) -> str:
    async with http.get(f"{order_url}/ready") as response:
        if response.status == 200:
            return "up"
        body = await response.json()
        return "down" if any(e["field"] == "broker" for e in body.get("errors", [])) else "other"


async def wait_broker(http: aiohttp.ClientSession, order_url: str, state: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while await broker_state(http, order_url) != state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the order service's broker link did not go {state}")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def build_backlog(orders_dsn: str, customer_ids: list[int], n: int) -> Counter:
    """Write n orders with their pending events; returns the orders per customer."""
    conn = await asyncpg.connect(orders_dsn)
    try:
        for start in range(1, n + 1, INSERT_CHUNK):
            await conn.execute(BUILD_BACKLOG, customer_ids, start, min(n, start + INSERT_CHUNK - 1))
    finally:
        await conn.close()
    return Counter(customer_ids[g % len(customer_ids)] for g in range(1, n + 1))


async def restart(target, order_amqp_url: str) -> None:
    """Stop the system and start it again on the same databases, the order service's broker link at
    `order_amqp_url`."""
    target.say("restarting it")
    await target.system.stop()
    target.system.order_amqp_url = order_amqp_url
    await target.system.start()
    await target.system.wait_ready(target.http)


async def backlog_drain(target, customer_ids: list[int], n: int, wait_exact) -> dict:
    system, direct = target.system, target.system.order_amqp_url
    broker = urlsplit(AMQP_URL)
    proxy = await TcpProxy(broker.hostname, broker.port or 5672).start()
    try:
        await restart(target, urlunsplit(broker._replace(netloc=f"{broker.netloc.rsplit(':', 1)[0]}:{proxy.port}")))
        await proxy.cut()
        await wait_broker(target.http, system.order_url, "down")
        started = time.monotonic()
        built = await build_backlog(system.database_url(system.databases[1]), customer_ids, n)
        built_s = time.monotonic() - started
        target.created.update(built)
        restored = time.monotonic()
        await proxy.restore()
        back = await wait_broker(target.http, system.order_url, "up")
        sync = await wait_exact(target.db, target.created, customer_ids, back, deadline=DRAIN_DEADLINE)
        await restart(target, direct)
    finally:
        await proxy.close()
    seconds = sync["seconds"]
    return {
        "events": n,
        "build_s": built_s,
        "reconnect_s": back - restored,
        "drain_s": seconds,
        "events_per_s": n / seconds if seconds else None,
        "exact": sync["exact"],
    }
