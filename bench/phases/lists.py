"""Lists at size (opt-in, `--lists`): a fresh system of ours whose databases hold a million orders and
100,000 customers, made in SQL; each list read in the round's closed loop, and its p99 over the p99 of
`GET /orders/{id}` read in the same slices (the lists, the point read, the slices alternated). Reported
against the target, never fatal. The plans themselves are checked by tests/test_lists_at_size.py."""

import argparse
import contextlib
import random
import time

import aiohttp
import asyncpg
from figure import Figure, at_most, dig, over
from phases.post_load import merged_load
from systems import Ours, System
from target import Round, alternated, run_loadgen, started, write_ids
from variant import OursVariant

ORDERS, CUSTOMERS = 1_000_000, 100_000
STATUSES = ("created", "paid", "shipped", "delivered", "cancelled")
DEEP = 100_000  # rows before the deep page, reached by following `next`
WALK_LIMIT = 200  # rows per page on the way there
SAMPLES = 1000  # point reads and customers' lists, spread over the tables
TARGET = 3.0  # a list's p99 over a point read's

FILL_CUSTOMERS = f"""
INSERT INTO customers (name, address, email, orders_count, created_at, updated_at)
SELECT 'Bench customer ' || g, g || ' Loopback Road', NULL, {ORDERS // CUSTOMERS},
       timestamptz '2026-01-01' + g * interval '1 second', now()
FROM generate_series(1, {CUSTOMERS}) g
"""
FILL_ORDERS = f"""
INSERT INTO orders (customer_id, product_name, quantity, price, status, created_at, updated_at)
SELECT 1 + g % {CUSTOMERS}, 'Bench widget', 2, 19.99, (ARRAY{list(STATUSES)})[1 + g % {len(STATUSES)}],
       timestamptz '2026-01-01' + g * interval '1 second', now()
FROM generate_series(1, {ORDERS}) g
"""


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lists",
        action="store_true",
        help=f"ours: fill a fresh system with {ORDERS:,} orders and {CUSTOMERS:,} customers, then read each "
        "list for --duration seconds in --slices slices (off by default: a few minutes)",
    )


async def fill(system: System) -> float:
    """The rows, in SQL; the seconds it took."""
    started_at = time.monotonic()
    for database, statement in zip(system.databases, (FILL_CUSTOMERS, FILL_ORDERS), strict=True):
        conn = await asyncpg.connect(system.database_url(database), timeout=5)
        try:
            await conn.execute("SET statement_timeout = 0")  # the database's own limit is the services'
            await conn.execute(statement)
        finally:
            await conn.close()
    return time.monotonic() - started_at


async def deep_cursor(http: aiohttp.ClientSession, order_url: str) -> str:
    """The `next` of the page that ends DEEP rows down the list, by following every `next` before it."""
    url = f"{order_url}/orders?limit={WALK_LIMIT}&count=false"
    for _ in range(DEEP // WALK_LIMIT):
        async with http.get(url) as response:
            cursor = (await response.json())["next"]
        url = f"{order_url}/orders?cursor={cursor}"
    return cursor


def reads(system: System, cursor: str) -> dict[str, tuple[str, list[str]]]:
    """Each measured read: the service it asks and the paths its clients take in turn."""
    ids = random.Random(37).sample(range(1, ORDERS + 1), SAMPLES)
    customers = random.Random(38).sample(range(1, CUSTOMERS + 1), SAMPLES)
    order, customer = system.order_url, system.customer_url
    return {
        "point": (order, [f"/orders/{order_id}" for order_id in ids]),
        "first": (order, ["/orders?limit=50&count=false"]),
        "customer": (order, [f"/orders?customer_id={customer_id}" for customer_id in customers]),
        "status": (order, [f"/orders?status={status}&count=false" for status in STATUSES]),
        "deep": (order, [f"/orders?cursor={cursor}&limit=50"]),
        "customers": (customer, ["/customers?limit=50&count=false"]),
        "first_counted": (order, ["/orders?limit=50"]),
        "status_counted": (order, [f"/orders?status={status}" for status in STATUSES]),
        "customers_counted": (customer, ["/customers?limit=50"]),
    }


async def run(bench: Round) -> None:
    args, ours = bench.args, bench.targets.get(Ours.name)
    if not args.lists or ours is None:
        return
    options = {"duration": args.duration / args.slices, "concurrency": args.concurrency, "keep_latencies": True}
    async with contextlib.AsyncExitStack() as stack:
        system = OursVariant(args.workers, "lists", 3340)
        http, _ = await started(system, stack)
        print(f"[{system.name}] filling: {ORDERS:,} orders, {CUSTOMERS:,} customers", flush=True)
        fill_seconds = await fill(system)
        print(f"[{system.name}] following `next` {DEEP:,} rows down", flush=True)
        measured = reads(system, await deep_cursor(http, system.order_url))
        files = {kind: write_ids(f"lists-{kind}.json", paths) for kind, (_, paths) in measured.items()}
        loads: dict[str, list[dict]] = {kind: [] for kind in measured}
        for number in range(args.slices):
            print(f"[{system.name}] each list and GET /orders/{{id}}: slice {number + 1} of {args.slices}", flush=True)
            for kind in alternated(list(measured), number):
                base = measured[kind][0]
                loads[kind].append(await run_loadgen(base, "get-path", files[kind], **options))
    result = {kind: merged_load(runs) for kind, runs in loads.items()}
    errors = sum(load["errors"] for load in result.values())
    bench.results[ours.name]["lists"] = {"reads": result, "errors": errors, "fill_seconds": fill_seconds}


POINT_P99 = dig("lists", "reads", "point", "latency_ms", "p99")


def versus_point(kind: str, label: str, judged: bool) -> Figure:
    read = over(dig("lists", "reads", kind, "latency_ms", "p99"), POINT_P99)
    target = {"target": f"≤ {TARGET:g}", "check": at_most(TARGET)} if judged else {}
    return Figure(f"lists_{kind}", f"at size: {label} p99 / GET /orders/{{id}} p99", 2, read, **target)


def no_errors(ours: float | None, _) -> bool | None:
    return None if ours is None else ours == 0


FIGURES = [
    Figure("lists_point_p99", "at size: GET /orders/{id} p99, ms", 1, POINT_P99),
    versus_point("first", "GET /orders?limit=50&count=false", True),
    versus_point("customer", "GET /orders?customer_id=", True),
    versus_point("status", "GET /orders?status=&count=false", True),
    versus_point("deep", f"a page {DEEP:,} rows deep by cursor", True),
    versus_point("customers", "GET /customers?limit=50&count=false", True),
    versus_point("first_counted", "GET /orders?limit=50 (counted)", False),
    versus_point("status_counted", "GET /orders?status= (counted)", False),
    versus_point("customers_counted", "GET /customers?limit=50 (counted)", False),
    Figure("lists_errors", "at size: errors", 0, dig("lists", "errors"), "0", no_errors),
]
