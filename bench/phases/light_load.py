"""Event lag at a light, fixed rate: one order per fresh customer, open loop; per order, the time from
the order's commit (its created_at) to its customer's count commit (the customer's updated_at)."""

import argparse
from datetime import datetime

import aiohttp
from figure import Figure, at_most_times, dig
from loadgen import latency_summary
from target import Round, Target, bounded_map, get_customer, write_ids

LAG_RATE = 20.0  # orders/s: light enough that no queue forms anywhere
LAG_P99_TARGET_MS = 10


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lag-duration", type=float, default=10.0, help=f"seconds of light load at {LAG_RATE:g}/s (default 10)"
    )


def lag_customers(args: argparse.Namespace) -> int:
    return max(1, round(LAG_RATE * args.lag_duration))


async def event_lags(http: aiohttp.ClientSession, base: str, orders: list[dict]) -> list[float]:
    """Per order, ms from the order's created_at to its customer's updated_at (one order per customer)."""
    customers = await bounded_map(lambda order: get_customer(http, base, order["customer_id"]), orders)
    lags = []
    for order, customer in zip(orders, customers, strict=True):
        if customer is not None:
            delta = datetime.fromisoformat(customer["updated_at"]) - datetime.fromisoformat(order["created_at"])
            lags.append(delta.total_seconds() * 1000)
    return lags


async def light_load(target: Target, args: argparse.Namespace, lag_ids: list[int]) -> dict:
    lag_file = target.lag_file if lag_ids is target.lag_ids else write_ids(f"{target.name}-aged-lag.json", lag_ids)
    target.say(f"light load: {LAG_RATE:g} orders/s for {args.lag_duration:g} s, one order per customer")
    light = await target.post_orders(lag_file, rate=LAG_RATE, count=len(lag_ids))
    lag_sync = await target.converged(lag_ids, light["ended_monotonic"])
    lags = await event_lags(target.http, target.system.customer_url, light.pop("orders")) if lag_sync["exact"] else []
    return {
        "light_load": light,
        "lag_convergence": lag_sync,
        "lag_ms": lags,
        "lag": {**latency_summary([lag / 1000 for lag in lags]), "n": len(lags)},
    }


async def run(bench: Round) -> None:
    for target in bench.targets.values():
        bench.results[target.name].update(await light_load(target, bench.args, target.lag_ids))


def lag_check(ours, baseline):
    if ours is None:
        return None
    return ours <= LAG_P99_TARGET_MS and at_most_times(4)(ours, baseline) is not False


FIGURES = [
    Figure("lag_p50", "event lag p50 at light load, ms", 1, dig("lag", "p50")),
    Figure(
        "lag_p99",
        "event lag p99 at light load, ms",
        1,
        dig("lag", "p99"),
        f"≤ {LAG_P99_TARGET_MS} ms and ≤ 4x baseline",
        lag_check,
    ),
    Figure("light_post_p99", "POST /orders p99 at light load, ms", 1, dig("light_load", "latency_ms", "p99")),
]
