"""What every phase works with: a running system and its customers (Target), the round (Round), and the
calls a phase makes of a system: create customers, run the load generator, wait for exact counts."""

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from systems import RUN_DIR, BenchError, System

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
HTTP_PARALLEL = 16  # the orchestrator's own requests (creating customers, reading them back)
CONVERGENCE_DEADLINE = 60.0  # "generous": a count still wrong after this is a failure
POLL_PAUSE = 0.01  # between convergence polls: the resolution of the convergence time
LOADGEN_GRACE = 60.0  # past its own duration, before a load generator counts as hung


async def bounded_map(function, items, limit: int = HTTP_PARALLEL) -> list:
    """await function(item) for each item, at most `limit` at a time, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item):
        async with semaphore:
            return await function(item)

    return await asyncio.gather(*(one(item) for item in items))


async def create_customer(http: aiohttp.ClientSession, base: str, n: int) -> int:
    body = {"customer": {"name": f"Bench customer {n}", "address": f"{n} Loopback Road"}}
    async with http.post(f"{base}/customers", json=body) as response:
        if response.status != 201:
            raise BenchError(f"POST {base}/customers answered {response.status}: {await response.text()}")
        return (await response.json())["id"]


async def create_customers(http: aiohttp.ClientSession, base: str, count: int) -> list[int]:
    return await bounded_map(lambda n: create_customer(http, base, n), range(count))


async def get_customer(http: aiohttp.ClientSession, base: str, customer_id: int) -> dict | None:
    try:
        async with http.get(f"{base}/customers/{customer_id}") as response:
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


async def orders_stored(http: aiohttp.ClientSession, base: str, customer_id: int) -> int | None:
    try:
        async with http.get(f"{base}/orders", params={"customer_id": customer_id, "limit": 1}) as response:
            return (await response.json())["total"] if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def write_ids(name: str, ids: list[int]) -> Path:
    path = RUN_DIR / name
    path.write_text(json.dumps(ids))
    return path


async def run_loadgen(base: str, target: str, ids_file: Path, **options) -> dict:
    """Run bench/loadgen.py in its own process and return its JSON result.

    The result comes through a file: through a pipe, an open loop's result (a megabyte: every order's
    id) arrived cut short, with the load generator exiting 0; the cause was not found."""
    out = RUN_DIR / f"loadgen-{target}-{time.monotonic_ns()}.json"
    args = [sys.executable, str(LOADGEN), "--url", base, "--target", target, "--ids", str(ids_file), "--out", str(out)]
    for name, value in options.items():
        flag = f"--{name.replace('_', '-')}"
        args += [flag] if value is True else [flag, str(value)]
    expected = options.get("duration") or options.get("count", 0) / options.get("rate", 1)
    process = await asyncio.create_subprocess_exec(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), expected + LOADGEN_GRACE)
    except TimeoutError:
        raise BenchError(f"the load generator ({target}) hung") from None
    finally:
        if process.returncode is None:  # it hung, or we are being cancelled
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise BenchError(f"the load generator ({target}) failed: {stderr.decode()[-2000:]}")
    try:
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


async def wait_exact(
    db: asyncpg.Connection, expected: Counter, ids: list[int], since: float, deadline: float = CONVERGENCE_DEADLINE
) -> dict:
    """Poll until each customer's orders_count equals the orders created for it; seconds since `since`.

    This reads the customer database directly: polling over HTTP would load the very service whose
    consumer we wait for, and add its own CPU to the CPU per order. (The final check is over HTTP.)
    Only customers not yet exact are read again; a count above the expected one can never come right.
    """
    pending, over = set(ids), {}
    deadline = time.monotonic() + deadline
    while pending and time.monotonic() < deadline:
        rows = await db.fetch("SELECT id, orders_count FROM customers WHERE id = ANY($1::int[])", list(pending))
        for cid, count in rows:
            if count == expected[cid]:
                pending.discard(cid)
            elif count > expected[cid]:
                over[cid] = count
                pending.discard(cid)
        if pending:
            await asyncio.sleep(POLL_PAUSE)
    exact = not pending and not over
    return {
        "seconds": max(0.0, time.monotonic() - since) if exact else None,
        "exact": exact,
        "still_short": sorted(pending)[:20],
        "over": {cid: {"count": count, "expected": expected[cid]} for cid, count in list(over.items())[:20]},
    }


async def check_exact(http: aiohttp.ClientSession, system: System, expected: Counter, ids: list[int]) -> dict:
    """Sum of orders_count increases == orders stored == orders created (201s), customer by customer."""
    customers = await bounded_map(lambda cid: get_customer(http, system.customer_url, cid), ids)
    stored = await bounded_map(lambda cid: orders_stored(http, system.order_url, cid), ids)
    mismatches = {}
    for cid, customer, total in zip(ids, customers, stored, strict=True):
        count = customer["orders_count"] if customer else None
        if count != expected[cid] or total != expected[cid]:
            mismatches[cid] = {"created": expected[cid], "counted": count, "stored": total}
    return {
        "orders_created": sum(expected[cid] for cid in ids),
        "orders_counted": sum(c["orders_count"] for c in customers if c),
        "orders_stored": sum(t for t in stored if t is not None),
        "exact": not mismatches,
        "mismatches": dict(list(mismatches.items())[:20]),
    }


async def started(system: System, stack: contextlib.AsyncExitStack) -> tuple[aiohttp.ClientSession, asyncpg.Connection]:
    """Reset and start the system (stopped when `stack` closes) and wait until it is ready; an HTTP session
    for it and a connection to its customer database, for convergence polling."""
    await system.reset()
    stack.push_async_callback(system.stop)
    await system.start()
    http = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)))
    await system.wait_ready(http)
    db = await asyncpg.connect(system.database_url(system.databases[0]), timeout=5)
    stack.push_async_callback(db.close)
    return http, db


@dataclass
class Target:
    """One system being measured: how to reach it, its customers, the orders created (201s) per customer
    so far, and every convergence wait (all must be exact)."""

    system: System
    http: aiohttp.ClientSession
    db: asyncpg.Connection  # its customer database, for convergence polling
    created: Counter = field(default_factory=Counter)
    load_ids: list[int] = field(default_factory=list)
    lag_ids: list[int] = field(default_factory=list)
    checked: list[int] = field(default_factory=list)  # customers whose counts the final check compares
    syncs: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.system.name

    def say(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    async def post_orders(self, ids_file: Path, **options) -> dict:
        result = await run_loadgen(self.system.order_url, "post-order", ids_file, **options)
        self.created.update({int(cid): n for cid, n in result.pop("created").items()})
        return result

    async def converged(self, ids: list[int], since: float, **options) -> dict:
        sync = await wait_exact(self.db, self.created, ids, since, **options)
        self.syncs.append(sync)
        return sync

    async def exactness(self) -> dict:
        """The final check over HTTP, failed too if any convergence wait on the way was not exact."""
        check = await check_exact(self.http, self.system, self.created, self.checked)
        return {**check, "exact": check["exact"] and all(sync["exact"] for sync in self.syncs)}

    @property
    def load_file(self) -> Path:
        return RUN_DIR / f"{self.name}-load.json"

    @property
    def lag_file(self) -> Path:
        return RUN_DIR / f"{self.name}-lag.json"


@dataclass
class Round:
    """Both systems up, each with its customers; every phase adds its results to `results[name]`.

    `targets` is in this round's turn order: a phase that runs on one system and then the other takes
    them in this order, so that over the rounds neither always goes second."""

    targets: dict[str, Target]
    args: argparse.Namespace
    results: dict[str, dict] = field(default_factory=dict)

    def sliced(self, number: int) -> list[Target]:
        """The systems' order in slice `number`: the round's order, then the reverse, and so on."""
        return alternated(list(self.targets.values()), number)


def alternated(items: list, number: int) -> list:
    """`items` in turn `number` (a slice, a round): their order, then the reverse, and so on."""
    return items if number % 2 == 0 else items[::-1]
