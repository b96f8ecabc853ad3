"""Ours only: the event path at size, and the same figures again after that history.

1. Backlog drain: the system is restarted with the order service's broker connection through a TCP
   proxy. The proxy is cut, N orders and their outbox rows are written straight into the order
   database (as N POSTs during an outage would leave them, only faster), the proxy is restored, and
   the time until every customer's `orders_count` is exact gives events/s from the moment the relay is
   back on the broker (its reconnect backoff is reported apart). Then the system is restarted without
   the proxy: only this phase pays for a Python proxy on the broker path.
2. Aging: the POST load and the light-load lag again on the same tables, now N orders, N deleted
   outbox rows and N processed events older, with autovacuum as the machine has it.
"""

import argparse
import asyncio
import time
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from figure import Figure, at_least, at_most, dig, over
from phases.light_load import light_load
from phases.post_load import warm_up
from systems import AMQP_URL, Ours
from target import Round, Target, create_customers

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


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        type=int,
        default=100_000,
        help="ours: orders of backlog drained, then the load again on that history (default 100000; 0 skips)",
    )


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


async def restart(target: Target, order_amqp_url: str) -> None:
    """Stop the system and start it again on the same databases, the order service's broker link at
    `order_amqp_url`."""
    target.say("restarting it")
    await target.system.stop()
    target.system.order_amqp_url = order_amqp_url
    await target.system.start()
    await target.system.wait_ready(target.http)


async def backlog_drain(target: Target, n: int) -> dict:
    system, ids = target.system, target.load_ids
    direct = system.order_amqp_url
    broker = urlsplit(AMQP_URL)
    proxy = await TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start()
    try:
        await restart(target, urlunsplit(broker._replace(netloc=f"{broker.netloc.rsplit(':', 1)[0]}:{proxy.port}")))
        await proxy.cut()
        await wait_broker(target.http, system.order_url, "down")
        started = time.monotonic()
        target.created.update(await build_backlog(system.database_url(system.databases[1]), ids, n))
        built_s = time.monotonic() - started
        restored = time.monotonic()
        await proxy.restore()
        back = await wait_broker(target.http, system.order_url, "up")
        sync = await target.converged(ids, back, deadline=DRAIN_DEADLINE)
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


async def aged(target: Target, args: argparse.Namespace, aged_lag_ids: list[int]) -> dict:
    """The POST load and the lag again, on the tables the backlog left."""
    target.say(f"after that history: POST /orders again, {args.concurrency} clients for {args.duration:g} s")
    post = await target.post_orders(target.load_file, duration=args.duration, concurrency=args.concurrency)
    sync = await target.converged(target.load_ids, post["ended_monotonic"])
    light = await light_load(target, args, aged_lag_ids)
    return {"aged_post_orders": post, "aged": {"convergence": sync, "lag": light["lag"]}}


async def run(bench: Round) -> None:
    args = bench.args
    for target in bench.targets.values():
        if not args.history or not isinstance(target.system, Ours):
            continue
        aged_lag_ids = await create_customers(target.http, target.system.customer_url, len(target.lag_ids))
        target.checked += aged_lag_ids
        target.say(f"backlog: {args.history:,} orders written while the relay cannot reach the broker, then drained")
        result = bench.results[target.name]
        result["backlog"] = await backlog_drain(target, args.history)
        if args.warmup:  # restarted after the backlog, like the fresh system before its POST load
            await warm_up(target, bench)
        result.update(await aged(target, args, aged_lag_ids))


FIGURES = [
    Figure(
        "drain_eps",
        "backlog drain, events/s (relay + broker + consumer)",
        0,
        dig("backlog", "events_per_s"),
        "≥ 2,000",
        at_least(2000),
    ),
    Figure("drain_reconnect_s", "backlog: relay back on the broker after the cut, s", 2, dig("backlog", "reconnect_s")),
    Figure(
        "aged_post_ratio",
        "POST /orders after the history / fresh",
        2,
        over(dig("aged_post_orders", "throughput_rps"), dig("post_orders", "throughput_rps")),
        "≥ 0.9",
        at_least(0.9),
    ),
    Figure(
        "aged_lag_p50_ratio",
        "event lag p50 after the history / fresh",
        2,
        over(dig("aged", "lag", "p50"), dig("lag", "p50")),
    ),
    Figure(
        "aged_lag_p99_ratio",
        "event lag p99 after the history / fresh",
        2,
        over(dig("aged", "lag", "p99"), dig("lag", "p99")),
        "≤ 1.2",
        at_most(1.2),
    ),
    Figure("aged_lag_p99", "event lag p99 after the history, ms", 1, dig("aged", "lag", "p99")),
]
