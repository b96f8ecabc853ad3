"""Benchmark the real services against a bare aiohttp baseline, back to back on this machine.

    python bench/run.py [--duration D] [--concurrency C] [--customers K] [--workers W] [--only baseline|ours]

Both systems (baseline and ours) are reset and started and stay up together for a round; each
closed-loop phase (warm-up and POST /orders, event lag at a light fixed rate, the two GETs) runs on
one system and then on the other, seconds apart, waiting each time until every orders_count is exact;
the POST and GET loads in `--slices` short slices per system, the two systems alternated slice by slice.
Round 1 adds the later phases (overload, ours' backlog, aging, event rates and tracing), then a
side-by-side phase of short alternated pairs; rounds 2.. repeat the closed-loop phases, the other
system first every other round. Then print each figure with its ratio to the baseline, the min-max
over the rounds, and write bench/results/<timestamp>.json and .png (and latest.png).
Exit status: 0 done, 1 exactness failed (a count or a stored order is off), 2 the bench itself failed.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import events
import history
import report
from aiohttp import web
from loadgen import latency_summary
from systems import RUN_DIR, Baseline, BenchError, Ours, System, cpu_sample, cpu_used

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
RESULTS_DIR = ROOT / "bench" / "results"

HTTP_PARALLEL = 16  # the orchestrator's own requests (creating customers, reading them back)
CONVERGENCE_DEADLINE = 60.0  # "generous": a count still wrong after this is a failure
POLL_PAUSE = 0.01  # between convergence polls: the resolution of the convergence time
BUSY_MACHINE_SHARE = 0.2  # above this share of CPU used by unrelated processes, warn that figures are noisy
LOADGEN_GRACE = 60.0  # past its own duration, before a load generator counts as hung
PAIR_SECONDS = 3.0  # one run of a side-by-side pair
PARTS = ("customer", "order", "both")  # the CPU per order a side-by-side pair keeps
OVERLOAD_CONNECTIONS = 2000  # "each request on its own": the client never queues them itself


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of POST /orders load (default 10)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop clients (default 32)")
    parser.add_argument("--customers", type=int, default=200, help="customers the orders go to (default 200)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS", "1")),
        help="gunicorn workers per service, both systems (default $WORKERS or 1)",
    )
    parser.add_argument("--only", choices=["baseline", "ours"], help="run one system only")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--lag-rate", type=float, default=20.0, help="light-load orders/s for the lag (default 20)")
    parser.add_argument("--lag-duration", type=float, default=10.0, help="seconds of light load (default 10)")
    parser.add_argument("--get-duration", type=float, help="seconds of each GET load (default: --duration)")
    parser.add_argument(
        "--overload-duration",
        type=float,
        default=20.0,
        help="seconds of open-loop overload, both systems (default 20; 0 skips it)",
    )
    parser.add_argument(
        "--overload-factor",
        type=float,
        default=2.0,
        help="offered rate in the overload phase, times the closed-loop throughput (default 2)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=100_000,
        help="ours: orders of backlog drained, then the load again on that history (default 100000; 0 skips it)",
    )
    parser.add_argument(
        "--tracing-duration",
        type=float,
        default=10.0,
        help="ours: seconds of POST /orders again with tracing on, exporting over OTLP to a sink "
        "this process runs (default 10; 0 skips)",
    )
    parser.add_argument(
        "--event-rates",
        type=int,
        default=20_000,
        help="ours: events for the relay-alone and consumer-alone rates (default 20000; 0 skips)",
    )
    parser.add_argument(
        "--cluster-events",
        type=int,
        default=10_000,
        help="ours: the same rates on a single RabbitMQ node and a 3-node cluster the bench starts "
        "(default 10000; 0 skips)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the closed-loop phases (POST, lag, GETs), both systems each time, for the min-max "
        "of every judged figure; the later phases run in the first round only (default 3)",
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="each round's POST and GET loads run in this many slices per system, the systems alternated "
        "slice by slice, so a slow minute of the machine falls on both (default 5)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=8,
        help="side by side: pairs of short POST and GET runs alternated between the two systems, both up "
        f"at once ({PAIR_SECONDS:g} s each; default 8; 0 skips)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.slices < 1 or args.pairs < 0:
        parser.error("--rounds and --slices must be at least 1 and --pairs not negative")
    if min(args.duration, args.concurrency, args.customers, args.workers, args.lag_rate, args.lag_duration) <= 0:
        parser.error("durations, counts and rates must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    args.get_duration = args.get_duration or args.duration
    return args


# --- talking to the services -------------------------------------------------------------------------


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


async def run_loadgen(base: str, target: str, ids_file: Path, **options) -> dict:
    """Run bench/loadgen.py in its own process and return its JSON result.

    The result comes through a file: through a pipe, an open loop's result (a megabyte: every order's
    id) arrived cut short at a multiple of 64 KiB in 3 of some 20 overload runs, with the load generator
    exiting 0; the cause was not found (it never happened with the load generator run alone)."""
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


async def event_lags(http: aiohttp.ClientSession, base: str, orders: list[dict]) -> list[float]:
    """Per order, ms from the order's created_at to its customer's updated_at (one order per customer)."""
    customers = await bounded_map(lambda order: get_customer(http, base, order["customer_id"]), orders)
    lags = []
    for order, customer in zip(orders, customers, strict=True):
        if customer is not None:
            delta = datetime.fromisoformat(customer["updated_at"]) - datetime.fromisoformat(order["created_at"])
            lags.append(delta.total_seconds() * 1000)
    return lags


def cpu_ms_per_order(used: dict[str, float], loadgen_cpu: float, orders: int) -> dict[str, float]:
    """CPU ms per order created, by part; `other` is what the rest of the machine spent meanwhile."""
    if not orders:
        return {}
    ms = {part: seconds * 1000 / orders for part, seconds in used.items()}
    ms["both"] = ms["customer"] + ms["order"]
    ms["loadgen"] = loadgen_cpu * 1000 / orders
    ms["other"] = ms["machine"] - ms["both"] - ms["postgresql"] - ms["rabbitmq"] - ms["loadgen"]
    return ms


def write_ids(name: str, ids: list[int]) -> Path:
    path = RUN_DIR / name
    path.write_text(json.dumps(ids))
    return path


# --- a round: both systems up, each phase on one and then the other ----------------------------------


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

    def say(self, message: str) -> None:
        print(f"[{self.system.name}] {message}", flush=True)

    async def post_orders(self, ids_file: Path, **options) -> dict:
        result = await run_loadgen(self.system.order_url, "post-order", ids_file, **options)
        self.created.update({int(cid): n for cid, n in result.pop("created").items()})
        return result

    async def converged(self, ids: list[int], since: float, **options) -> dict:
        sync = await wait_exact(self.db, self.created, ids, since, **options)
        self.syncs.append(sync)
        return sync

    @property
    def load_file(self) -> Path:
        return RUN_DIR / f"{self.system.name}-load.json"

    @property
    def lag_file(self) -> Path:
        return RUN_DIR / f"{self.system.name}-lag.json"


async def prepare(target: Target, args: argparse.Namespace) -> dict:
    lag_count = max(1, round(args.lag_rate * args.lag_duration))
    target.say(f"ready; creating {args.customers} + {lag_count} customers")
    target.load_ids = await create_customers(target.http, target.system.customer_url, args.customers)
    target.lag_ids = await create_customers(target.http, target.system.customer_url, lag_count)
    target.checked = target.load_ids + target.lag_ids
    write_ids(target.load_file.name, target.load_ids)
    write_ids(target.lag_file.name, target.lag_ids)
    return {"system": target.system.name, "workers": args.workers}


def alternated(names: list[str], number: int) -> list[str]:
    """The systems' order in turn `number` (a slice, a pair, a round): `names`' order, then the reverse,
    and so on."""
    return names if number % 2 == 0 else names[::-1]


def merged_load(loads: list[dict]) -> dict:
    """One closed-loop result from a step's slices: counts summed, throughput over their time, the
    latency percentiles of all their requests pooled."""
    elapsed, ok = sum(load["elapsed_s"] for load in loads), sum(load["ok"] for load in loads)
    loadgen_cpu = sum(load["loadgen_cpu_s"] for load in loads)
    return {
        "target": loads[0]["target"],
        "mode": "closed",
        "concurrency": loads[0]["concurrency"],
        "slices": len(loads),
        "requests": sum(load["requests"] for load in loads),
        "ok": ok,
        "errors": sum(load["errors"] for load in loads),
        "retries": sum(load["retries"] for load in loads),
        "error_kinds": dict(sum((Counter(load["error_kinds"]) for load in loads), Counter())),
        "elapsed_s": elapsed,
        "throughput_rps": ok / elapsed if elapsed > 0 else 0.0,
        "latency_ms": latency_summary([latency for load in loads for latency in load["latencies_s"]]),
        "loadgen_cpu_s": loadgen_cpu,
        "loadgen_cpu_share": loadgen_cpu / elapsed if elapsed > 0 else 0.0,
        "ended_monotonic": loads[-1]["ended_monotonic"],
    }


async def post_loads(targets: dict[str, Target], args: argparse.Namespace) -> dict[str, dict]:
    """Each system's warm-up, then the measured closed loop in `--slices` slices per system, the systems
    alternated slice by slice. CPU is sampled before each slice and after its convergence (so the
    consumer's share of the work is in it) and summed over the slices."""
    results: dict[str, dict] = {name: {} for name in targets}
    closed_loop = {"concurrency": args.concurrency}
    if args.warmup:
        for name, target in targets.items():
            target.say(f"warm-up: {args.warmup:g} s of POST /orders")
            warm = await target.post_orders(target.load_file, duration=args.warmup, **closed_loop)
            results[name]["warmup_convergence"] = await target.converged(target.load_ids, warm["ended_monotonic"])
    seconds = args.duration / args.slices
    loads: dict[str, list[dict]] = {name: [] for name in targets}
    syncs: dict[str, list[dict]] = {name: [] for name in targets}
    used: dict[str, Counter] = {name: Counter() for name in targets}
    first: dict[str, dict] = {}
    last: dict[str, dict] = {}
    for number in range(args.slices):
        for name in alternated(list(targets), number):
            target = targets[name]
            target.say(f"POST /orders: {args.concurrency} clients, slice {number + 1} of {args.slices} ({seconds:g} s)")
            before = cpu_sample(target.system)
            load = await target.post_orders(target.load_file, duration=seconds, keep_latencies=True, **closed_loop)
            syncs[name].append(await target.converged(target.load_ids, load["ended_monotonic"]))
            after = cpu_sample(target.system)
            used[name].update(cpu_used(before, after))
            first.setdefault(name, before)
            last[name] = after
            loads[name].append(load)
    for name in targets:
        load = merged_load(loads[name])
        slowest = max(syncs[name], key=lambda sync: float("inf") if sync["seconds"] is None else sync["seconds"])
        results[name].update(
            {
                "post_orders": load,
                "convergence": slowest,  # the slowest slice's (a failed one's, if any)
                "processes": {"before": first[name]["services"], "after": last[name]["services"]},
                "cpu_ms_per_order": cpu_ms_per_order(dict(used[name]), load["loadgen_cpu_s"], load["ok"]),
            }
        )
    return results


async def light_load(target: Target, args: argparse.Namespace, aged_lag_ids: list[int] | None = None) -> dict:
    """An open loop at the lag rate, one order per fresh customer (the aged ones after the history); the
    lag of each order's count."""
    lag_ids = aged_lag_ids or target.lag_ids
    lag_file = write_ids(f"{target.system.name}-aged-lag.json", lag_ids) if aged_lag_ids else target.lag_file
    target.say(f"light load: {args.lag_rate:g} orders/s for {args.lag_duration:g} s, one order per customer")
    light = await target.post_orders(lag_file, rate=args.lag_rate, count=len(lag_ids))
    lag_sync = await target.converged(lag_ids, light["ended_monotonic"])
    lags = await event_lags(target.http, target.system.customer_url, light.pop("orders")) if lag_sync["exact"] else []
    return {
        "light_load": light,
        "lag_convergence": lag_sync,
        "lag_ms": lags,
        "lag": {**latency_summary([lag / 1000 for lag in lags]), "n": len(lags)},
    }


async def get_loads(targets: dict[str, Target], args: argparse.Namespace) -> dict[str, dict]:
    """GET /customers/{id} and GET /orders?customer_id= in `--slices` slices per system, alternated as
    the POST load's are."""
    seconds = args.get_duration / args.slices
    options = {"duration": seconds, "concurrency": args.concurrency, "keep_latencies": True}
    loads: dict[str, dict[str, list[dict]]] = {name: {"get_customer": [], "get_orders": []} for name in targets}
    for number in range(args.slices):
        for name in alternated(list(targets), number):
            target = targets[name]
            target.say(f"GET /customers/{{id}} and GET /orders?customer_id=: slice {number + 1} of {args.slices}")
            customer, order = target.system.customer_url, target.system.order_url
            loads[name]["get_customer"].append(await run_loadgen(customer, "get-customer", target.load_file, **options))
            # Customers with exactly one order each, so both systems serve identical pages.
            loads[name]["get_orders"].append(await run_loadgen(order, "get-orders", target.lag_file, **options))
    return {name: {step: merged_load(runs) for step, runs in steps.items()} for name, steps in loads.items()}


async def later_phases(target: Target, args: argparse.Namespace, capacity: float) -> dict:
    """Round 1 only: the overload (both systems), then ours' backlog, aging and event rates."""
    result = {}
    if args.overload_duration:
        result["overload"] = await overload(target, args, capacity)
        target.syncs.append({"exact": result["overload"]["exact"]})
    if not isinstance(target.system, Ours):
        return result
    if args.history:
        aged_lag_ids = await create_customers(target.http, target.system.customer_url, len(target.lag_ids))
        target.checked += aged_lag_ids
        target.say(f"backlog: {args.history:,} orders written while the relay cannot reach the broker, then drained")
        result["backlog"] = await history.backlog_drain(target, target.load_ids, args.history, wait_exact)
        target.syncs.append({"exact": result["backlog"]["exact"]})
        if args.warmup:  # restarted after the backlog, like the fresh system before its POST load
            warm = await target.post_orders(target.load_file, duration=args.warmup, concurrency=args.concurrency)
            await target.converged(target.load_ids, warm["ended_monotonic"])
        target.say(f"after that history: POST /orders again, {args.concurrency} clients for {args.duration:g} s")
        aged_post = await target.post_orders(target.load_file, duration=args.duration, concurrency=args.concurrency)
        result["aged_post_orders"] = aged_post
        aged_sync = await target.converged(target.load_ids, aged_post["ended_monotonic"])
        aged_light = await light_load(target, args, aged_lag_ids)
        result["aged"] = {"convergence": aged_sync, "lag": aged_light["lag"]}
    if args.event_rates:
        target.say("the relay and the consumer alone")
        result["event_rates"] = await events.rates(target.system, target.http, args.event_rates)
    return result


async def overload(target: Target, args: argparse.Namespace, capacity: float) -> dict:
    """Open loop at `--overload-factor` times the closed-loop throughput measured before, each request on
    its own (10 s client timeout), on customers of its own. Exact means: every order stored is counted
    once, and every 201 is among them (a timed-out request may still have stored its order).

    Goodput is judged against the capacity at the time: the closed-loop throughput measured before the
    phase and again right after it, averaged. This machine's speed drifts by ±15 % within minutes, and
    a capacity measured at a fast moment alone made the same code read 0.70 one run and 0.89 the next."""
    system = target.system
    rate = capacity * args.overload_factor
    count = max(1, round(rate * args.overload_duration))
    ids = await create_customers(target.http, system.customer_url, args.customers)
    target.say(
        f"overload: {rate:,.0f} orders/s offered open loop for {args.overload_duration:g} s "
        f"({args.overload_factor:g}x the {capacity:,.0f}/s measured)"
    )
    run = await run_loadgen(
        system.order_url,
        "post-order",
        write_ids(f"{system.name}-overload.json", ids),
        rate=rate,
        count=count,
        connections=OVERLOAD_CONNECTIONS,
    )
    created = Counter({int(cid): n for cid, n in run.pop("created").items()})
    run.pop("orders")

    async def stored_now() -> Counter:
        totals = await bounded_map(lambda cid: orders_stored(target.http, system.order_url, cid), ids)
        return Counter(dict(zip(ids, totals, strict=True)))

    # A system that queued everything still commits requests its clients gave up on: judge it once it is quiet.
    stored = await stored_now()
    for _ in range(10):
        sync = await wait_exact(target.db, stored, ids, run["ended_monotonic"])
        settled = await stored_now()
        if settled == stored:
            break
        stored = settled
    target.say(f"overload: capacity again, {args.concurrency} clients for {args.duration:g} s")
    after = await target.post_orders(target.load_file, duration=args.duration, concurrency=args.concurrency)
    after_sync = await target.converged(target.load_ids, after["ended_monotonic"])
    kinds = run["error_kinds"]
    return {
        "capacity_rps": (capacity + after["throughput_rps"]) / 2,
        "capacity_before_rps": capacity,
        "capacity_after_rps": after["throughput_rps"],
        "offered_rps": rate,
        "goodput_rps": run["ok"] / args.overload_duration,
        "latency_ms": run["latency_ms"],
        "requests": run["requests"],
        "refused_share": kinds.get("status 503", 0) / run["requests"],
        "timeouts": sum(n for kind, n in kinds.items() if "Timeout" in kind),
        "other_errors": sum(n for kind, n in kinds.items() if kind != "status 503" and "Timeout" not in kind),
        "exact": sync["exact"] and after_sync["exact"] and all(created[cid] <= stored[cid] for cid in ids),
        "created": sum(created.values()),
        "stored": sum(stored.values()),
    }


async def started(system: System, stack: contextlib.AsyncExitStack) -> tuple[aiohttp.ClientSession, asyncpg.Connection]:
    """Start the system (stopped when `stack` closes) and wait until it is ready; an HTTP session for it and
    a connection to its customer database, for convergence polling."""
    stack.push_async_callback(system.stop)
    await system.start()
    http = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)))
    await system.wait_ready(http)
    db = await asyncpg.connect(system.database_url(system.databases[0]), timeout=5)
    stack.push_async_callback(db.close)
    return http, db


SYSTEMS: dict[str, type[System]] = {"baseline": Baseline, "ours": Ours}


async def bench_round(turn: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """Reset and start the systems in `turn`, all up at once, and run each closed-loop phase (warm-up and
    POST load, light load, GETs) on one after the other, in `turn`'s order; then the later phases
    (`later_phases`, where `args` asks for them), the exactness check, and stop them all.

    Why together: this machine's speed drifts by ±15 % within minutes (its host takes the CPU away), so
    two systems measured a minute apart compare the two minutes as much as the code; here their POST
    and GET loads are cut into slices of a few seconds, alternated, so a slow stretch falls on both
    (when each system ran its 10 s in one piece, a slow stretch on one of them decided a round: the
    order service's CPU per order read 0.83x to 1.55x over the three rounds of one run). The idle system
    meanwhile takes little CPU (ours about 1.3 % of a core per worker, admission's tick; the baseline's
    under 0.1 %), and none of it is counted in the other's figures."""
    results: dict[str, dict] = {}
    async with contextlib.AsyncExitStack() as stack:
        targets: dict[str, Target] = {}
        for name in turn:
            system = SYSTEMS[name](args.workers)
            print(f"[{name}] resetting its databases and queues, starting it", flush=True)
            await system.reset()
            targets[name] = Target(system, *await started(system, stack))
        for name, target in targets.items():
            results[name] = await prepare(target, args)
        for name, measured in (await post_loads(targets, args)).items():
            results[name].update(measured)
        for name, target in targets.items():
            results[name].update(await light_load(target, args))
        for name, measured in (await get_loads(targets, args)).items():
            results[name].update(measured)
        for name, target in targets.items():
            results[name].update(await later_phases(target, args, results[name]["post_orders"]["throughput_rps"]))
            exactness = await check_exact(target.http, target.system, target.created, target.checked)
            exactness["exact"] = exactness["exact"] and all(sync["exact"] for sync in target.syncs)
            results[name]["exactness"] = exactness
    if "ours" in results and args.tracing_duration:
        results["ours"]["traced"] = traced = await traced_post_orders(args)
        results["ours"]["exactness"]["exact"] = results["ours"]["exactness"]["exact"] and traced["exact"]
    return {name: results[name] for name in sorted(results)}  # baseline, ours: the order the report uses


class OtlpSink:
    """Takes OTLP/HTTP trace exports and throws them away (counting them): the cost measured is the
    services' own, not a collector's."""

    def __init__(self) -> None:
        self.exports = self.bytes = 0

    async def receive(self, request: web.Request) -> web.Response:
        self.bytes += len(await request.read())
        self.exports += 1
        return web.Response(content_type="application/x-protobuf")

    async def start(self, stack: contextlib.AsyncExitStack) -> str:
        app = web.Application()
        app.router.add_post("/v1/traces", self.receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"


class TracedOurs(Ours):
    """Our services with tracing on: every request, statement and event exported to `endpoint`."""

    def __init__(self, workers: int, endpoint: str) -> None:
        super().__init__(workers)
        self.endpoint = endpoint

    def env(self) -> dict:
        return {
            **super().env(),
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS": "^/health$,^/ready$,^/metrics$",
        }


async def traced_post_orders(args: argparse.Namespace) -> dict:
    """The same POST /orders load on a fresh start of ours with tracing on (sampling every trace)."""
    async with contextlib.AsyncExitStack() as stack:
        sink = OtlpSink()
        system = TracedOurs(args.workers, await sink.start(stack))
        print(f"[ours, traced] tracing on, exporting to {system.endpoint}; resetting and starting", flush=True)
        await system.reset()
        http, db = await started(system, stack)
        target = Target(system, http, db)
        ids = await create_customers(http, system.customer_url, args.customers)
        ids_file = write_ids("traced-load.json", ids)
        closed_loop = {"concurrency": args.concurrency}
        if args.warmup:
            await target.post_orders(ids_file, duration=args.warmup, **closed_loop)
        target.say(f"POST /orders with tracing on: {args.concurrency} clients for {args.tracing_duration:g} s")
        before = cpu_sample(system)
        load = await target.post_orders(ids_file, duration=args.tracing_duration, **closed_loop)
        sync = await wait_exact(db, target.created, ids, load["ended_monotonic"])
        after = cpu_sample(system)
        exact = (await check_exact(http, system, target.created, ids))["exact"] and sync["exact"]
        return {
            "post_orders": load,
            "exact": exact,
            "otlp_exports": sink.exports,
            "otlp_bytes": sink.bytes,
            "cpu_ms_per_order": cpu_ms_per_order(cpu_used(before, after), load["loadgen_cpu_s"], load["ok"]),
        }


async def cluster_event_rates(args: argparse.Namespace) -> dict:
    """The relay's and the consumer's rates on nodes of the bench's own: one, then three clustered."""
    print("[ours] the relay and the consumer alone, on a single RabbitMQ node, then a 3-node cluster", flush=True)
    try:
        return await events.cluster_rates(args.workers, args.cluster_events)
    except events.BenchError as exc:  # no RabbitMQ server here, or no right to start nodes as its user
        print(f"[ours] skipped: {exc}", flush=True)
        return {"skipped": str(exc)}


async def side_by_side(args: argparse.Namespace) -> dict:
    """Both systems up at once; POST /orders and GET /customers/{id} in runs of PAIR_SECONDS, the two
    systems in turn (baseline first in one pair, ours first in the next), `--pairs` times.

    This machine's speed drifts by ±15 % within minutes (its host takes the CPU away), more than what
    is measured: two systems measured a minute apart compare the two minutes as much as the code. A
    pair's runs are seconds apart, so the ratio within each pair holds still; its median over the pairs
    is the figure, with the range. The idle system takes no part in a run's CPU figures (its own
    processes are not counted; PostgreSQL and RabbitMQ are shared and not judged)."""
    print(f"side by side: both systems up, {args.pairs} pairs of {PAIR_SECONDS:g} s runs in turn", flush=True)
    async with contextlib.AsyncExitStack() as stack:
        targets: dict[str, tuple[Target, Path, list[int]]] = {}
        for system in (Baseline(args.workers), Ours(args.workers)):
            await system.reset()
            http, db = await started(system, stack)
            ids = await create_customers(http, system.customer_url, args.customers)
            target = Target(system, http, db)
            ids_file = write_ids(f"{system.name}-pairs.json", ids)
            await target.post_orders(ids_file, duration=max(args.warmup, 1.0), concurrency=args.concurrency)
            targets[system.name] = (target, ids_file, ids)
        pairs, exact = [], True
        for number in range(args.pairs):
            turn = alternated(list(targets), number)
            pair: dict[str, dict] = {}
            for name in turn:
                target, ids_file, ids = targets[name]
                before = cpu_sample(target.system)
                load = await target.post_orders(ids_file, duration=PAIR_SECONDS, concurrency=args.concurrency)
                sync = await wait_exact(target.db, target.created, ids, load["ended_monotonic"])
                after = cpu_sample(target.system)
                exact = exact and sync["exact"]
                cpu = cpu_ms_per_order(cpu_used(before, after), load["loadgen_cpu_s"], load["ok"])
                pair[name] = {"post_rps": load["throughput_rps"], **{f"cpu_{part}": cpu.get(part) for part in PARTS}}
            for name in turn:
                target, ids_file, _ = targets[name]
                url, options = target.system.customer_url, {"duration": PAIR_SECONDS, "concurrency": args.concurrency}
                get = await run_loadgen(url, "get-customer", ids_file, **options)
                pair[name]["get_customer_rps"] = get["throughput_rps"]
            pairs.append(pair)
        for target, _, ids in targets.values():
            exact = exact and (await check_exact(target.http, target.system, target.created, ids))["exact"]
    return {"pairs": pairs, "exact": exact, "seconds_per_run": PAIR_SECONDS}


# --- the run -----------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def verdict_lines(results: dict[str, dict], rows: list[dict]) -> tuple[list[str], bool]:
    lines, exact = [], True
    for name, result in results.items():
        check = result["exactness"]
        exact &= check["exact"]
        state = "exact" if check["exact"] else "MISMATCH"
        lines.append(
            f"{name}: {state}: {check['orders_created']} orders created (201), "
            f"{check['orders_counted']} counted in orders_count, {check['orders_stored']} stored"
        )
        if not check["exact"]:
            lines.append(f"  mismatches (first 20): {check['mismatches']}; convergence: {result['convergence']}")
        cpu = result.get("cpu_ms_per_order") or {}
        if cpu.get("machine") and cpu["other"] > BUSY_MACHINE_SHARE * cpu["machine"]:
            lines.append(
                f"  note: other processes took {cpu['other'] / cpu['machine']:.0%} of the machine's CPU "
                f"during {name}'s POST load: its figures are noisy; rerun on a quiet machine"
            )
    judged = [row for row in rows if row["pass"] is not None]
    if judged:
        missed = [row["label"] for row in judged if not row["pass"]]
        lines.append(
            f"targets: {len(judged) - len(missed)} of {len(judged)} met"
            + (f"; missed: {' | '.join(missed)}" if missed else "")
        )
    return lines, exact


async def main(args: argparse.Namespace) -> int:
    # SIGTERM (a CI timeout, say) cancels us like Ctrl-C does, so the systems' cleanup still stops them.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    names = [args.only] if args.only else ["baseline", "ours"]
    results = await bench_round(names, args)
    if "ours" in results and args.cluster_events:
        results["ours"]["cluster_event_rates"] = await cluster_event_rates(args)
    paired = await side_by_side(args) if args.pairs and not args.only else None

    rows = report.compare(results)
    lines, exact = verdict_lines(results, rows)
    rounds = [rows]
    quick = argparse.Namespace(
        **{**vars(args), "history": 0, "overload_duration": 0, "event_rates": 0, "tracing_duration": 0}
    )
    for number in range(2, args.rounds + 1):
        print(f"round {number} of {args.rounds}: the closed-loop phases again", flush=True)
        # Each round after the first starts with the other system, so neither always runs second (after
        # the other's writes, say, while PostgreSQL and RabbitMQ still work them off).
        again = await bench_round(alternated(names, number - 1), quick)  # round 1 is turn 0
        rounds.append(report.compare(again))
        round_lines, round_exact = verdict_lines(again, [])
        if not round_exact:
            exact = False
            lines += [f"round {number}: {line}" for line in round_lines]
    settings = (
        f"{args.workers} worker(s) per service, POST load {args.concurrency} clients x {args.duration:g} s "
        f"(+{args.warmup:g} s warm-up), {args.customers} customers, light load {args.lag_rate:g}/s x "
        f"{args.lag_duration:g} s, GETs {args.get_duration:g} s each"
    )
    print()
    print(settings)
    print(report.table(rows))
    print("\n".join(lines))
    if len(rounds) > 1:
        print(f"\nover {len(rounds)} rounds (min to max; the later phases ran in round 1 only):")
        print(report.rounds_table(rounds))
    paired_rows = report.pairs_rows(paired) if paired else []
    if paired:
        print(
            f"\nside by side: both systems up, {len(paired['pairs'])} pairs of {PAIR_SECONDS:g} s runs in turn; "
            "the median of the ratios within each pair (min to max):"
        )
        print(report.pairs_table(paired_rows))
        if not paired["exact"]:
            exact = False
            print("side by side: MISMATCH: orders_count increases do not match the orders created")

    stamp = started.strftime("%Y%m%d-%H%M%S")
    document = {
        "started_at": started.isoformat(),
        "git_commit": git_commit(),
        "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "exact": exact,
        "comparison": rows,
        "rounds": rounds,
        "side_by_side": {**paired, "comparison": paired_rows} if paired else None,
        "results": results,
    }
    json_path, png_path = RESULTS_DIR / f"{stamp}.json", RESULTS_DIR / f"{stamp}.png"
    report.save_json(json_path, document)
    report.chart(png_path, results, f"ours vs baseline, {stamp} ({git_commit() or 'no commit'}): {settings}")
    shutil.copyfile(png_path, RESULTS_DIR / "latest.png")
    print(f"results: {json_path.relative_to(ROOT)}, {png_path.relative_to(ROOT)} (also bench/results/latest.png)")
    if not exact:
        print("bench: FAILED: orders_count increases do not match the orders created", file=sys.stderr)
        return 1
    return 0


def cli() -> int:
    args = parse_args()
    try:
        return asyncio.run(main(args))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # the systems were stopped on the way out
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
