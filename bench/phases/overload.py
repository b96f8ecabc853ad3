"""Overload: an open loop at twice the closed-loop throughput measured before, each request on its own
(10 s client timeout), on customers of its own. Exact means: every order stored is counted once, and
every 201 is among them (a timed-out request may still have stored its order).

Goodput is judged against the capacity at the time: the closed-loop throughput measured before the
phase and again right after it, averaged, since the machine's speed drifts within minutes."""

import argparse
from collections import Counter

from figure import Figure, at_least, at_most, dig, over
from target import Round, Target, bounded_map, create_customers, orders_stored, run_loadgen, wait_exact, write_ids

FACTOR = 2.0  # offered rate, times the closed-loop throughput
CONNECTIONS = 2000  # "each request on its own": the client never queues them itself
SETTLE_TRIES = 10


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overload-duration", type=float, default=20.0, help="seconds of open-loop overload (default 20; 0 skips)"
    )


async def settled(target: Target, ids: list[int], since: float) -> tuple[Counter, dict]:
    """The orders stored per customer once the system is quiet (one that queued everything still commits
    requests its clients gave up on), and the wait for their counts."""

    async def stored_now() -> Counter:
        totals = await bounded_map(lambda cid: orders_stored(target.http, target.system.order_url, cid), ids)
        return Counter(dict(zip(ids, totals, strict=True)))

    stored = await stored_now()
    for _ in range(SETTLE_TRIES):
        sync = await wait_exact(target.db, stored, ids, since)
        now = await stored_now()
        if now == stored:
            break
        stored = now
    return stored, sync


async def overload(target: Target, args: argparse.Namespace, capacity: float) -> dict:
    rate = capacity * FACTOR
    ids = await create_customers(target.http, target.system.customer_url, args.customers)
    target.say(f"overload: {rate:,.0f} orders/s offered open loop for {args.overload_duration:g} s")
    ids_file = write_ids(f"{target.name}-overload.json", ids)
    count = max(1, round(rate * args.overload_duration))
    run = await run_loadgen(
        target.system.order_url, "post-order", ids_file, rate=rate, count=count, connections=CONNECTIONS
    )
    created = Counter({int(cid): n for cid, n in run.pop("created").items()})
    run.pop("orders")
    stored, sync = await settled(target, ids, run["ended_monotonic"])
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


async def run(bench: Round) -> None:
    if not bench.args.overload_duration:
        return
    for target in bench.targets.values():
        capacity = bench.results[target.name]["post_orders"]["throughput_rps"]
        result = bench.results[target.name]["overload"] = await overload(target, bench.args, capacity)
        target.syncs.append({"exact": result["exact"]})


def overload_figure(key: str, label: str, digits: int, *path: str, **judged) -> Figure:
    return Figure(f"overload_{key}", f"overload: {label}", digits, dig("overload", *path), **judged)


FIGURES = [
    overload_figure("capacity", "capacity (closed-loop orders/s, mean)", 0, "capacity_rps"),
    overload_figure("capacity_before", "capacity measured before it, orders/s", 0, "capacity_before_rps"),
    overload_figure("capacity_after", "capacity measured after it, orders/s", 0, "capacity_after_rps"),
    overload_figure("offered", "offered open loop, orders/s", 0, "offered_rps"),
    Figure(
        "overload_goodput_ratio",
        "overload: goodput / capacity",
        2,
        over(dig("overload", "goodput_rps"), dig("overload", "capacity_rps")),
        "≥ 0.85",
        at_least(0.85),
    ),
    overload_figure("p50", "accepted p50, ms", 1, "latency_ms", "p50"),
    overload_figure("p99", "accepted p99, ms", 1, "latency_ms", "p99", target="≤ 1,000 ms", check=at_most(1000)),
    overload_figure("refused", "share refused (503)", 2, "refused_share"),
    overload_figure("timeouts", "client timeouts", 0, "timeouts", target="0", check=at_most(0)),
]
