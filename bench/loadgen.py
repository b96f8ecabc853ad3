"""HTTP load generator for the benchmark, run in its own process so its CPU is not the services'.

    python bench/loadgen.py --url http://127.0.0.1:3401 --target post-order --ids ids.json \\
        --concurrency 32 --duration 10                 closed loop: C clients, each sends when its answer came
    python bench/loadgen.py ... --rate 20 --count 200  open loop: one request every 1/R s, whatever the answers

`--ids` is a JSON list of customer ids (for `get-path`, of paths with their queries), used round robin (open
loop: each once when the list is long enough).
The result is one JSON object on stdout (or in the `--out` file): counts, throughput, latency percentiles in
milliseconds, this process's own CPU seconds, and for `post-order` the 201s per customer (open loop: every
created order).
"""

import argparse
import asyncio
import itertools
import json
import math
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import uvloop
from lean_http import LeanSession

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
OPEN_LOOP_CONNECTIONS = 100
EXPECTED = {"post-order": 201, "get-customer": 200, "get-orders": 200, "get-path": 200}


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of unsorted values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def latency_summary(latencies_s: list[float]) -> dict:
    ms = [value * 1000 for value in latencies_s]
    summary = {f"p{pct}": percentile(ms, pct) for pct in (50, 90, 99)}
    summary["max"] = max(ms) if ms else None
    summary["mean"] = sum(ms) / len(ms) if ms else None
    return summary


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # of the requests that got the expected status
    errors: Counter = field(default_factory=Counter)  # by kind: "status 503", "TimeoutError", ...
    created: Counter = field(default_factory=Counter)  # customer id -> orders created (201)
    orders: list[dict] = field(default_factory=list)  # open loop, post-order: what each 201 returned
    requests: int = 0


class Client:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, target: str, keep_orders: bool) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.target = target
        self.keep_orders = keep_orders
        self.tally = Tally()

    def request(self, customer_id: int):
        if self.target == "post-order":
            body = {
                "order": {
                    "customer_id": customer_id,
                    "product_name": "Bench widget",
                    "quantity": 2,
                    "price": "19.99",
                    "status": "created",
                }
            }
            return self.session.post(
                f"{self.base_url}/orders", data=orjson.dumps(body), headers={"Content-Type": "application/json"}
            )
        if self.target == "get-customer":
            return self.session.get(f"{self.base_url}/customers/{customer_id}")
        if self.target == "get-path":  # the "ids" are paths with their queries
            return self.session.get(f"{self.base_url}{customer_id}")
        return self.session.get(f"{self.base_url}/orders", params={"customer_id": customer_id})

    async def send(self, customer_id: int, started: float) -> None:
        """One request; latency counts from `started` (the scheduled time, in the open loop)."""
        tally = self.tally
        tally.requests += 1
        try:
            async with self.request(customer_id) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            tally.errors[type(exc).__name__] += 1
            return
        if status != EXPECTED[self.target]:
            tally.errors[f"status {status}"] += 1
            return
        tally.latencies.append(time.monotonic() - started)
        if self.target == "post-order":
            tally.created[customer_id] += 1
            if self.keep_orders:
                order = orjson.loads(body)
                tally.orders.append({"id": order["id"], "customer_id": customer_id, "created_at": order["created_at"]})


async def closed_loop(client: Client, ids: list[int], concurrency: int, duration: float) -> None:
    next_id = itertools.cycle(ids).__next__  # shared by the workers: one event loop, so no lock needed
    deadline = time.monotonic() + duration

    async def worker() -> None:
        while time.monotonic() < deadline:
            await client.send(next_id(), time.monotonic())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def open_loop(client: Client, ids: list[int], rate: float, count: int) -> None:
    start = time.monotonic()
    next_id = itertools.cycle(ids).__next__
    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))  # pacing, not synchronisation
        tasks.append(asyncio.create_task(client.send(next_id(), scheduled)))
    await asyncio.gather(*tasks)


async def run(args: argparse.Namespace, ids: list[int]) -> dict:
    # Open loop: enough connections that a slow answer never delays the next scheduled request.
    connections = args.concurrency if args.rate is None else args.connections
    headers = dict((name.strip(), value.strip()) for name, _, value in (text.partition(":") for text in args.header))
    session = LeanSession(connections, REQUEST_TIMEOUT.total, headers)
    try:
        client = Client(session, args.url, args.target, keep_orders=args.rate is not None)
        cpu_before, started = cpu_seconds(), time.monotonic()
        if args.rate is None:
            await closed_loop(client, ids, args.concurrency, args.duration)
        else:
            await open_loop(client, ids, args.rate, args.count)
        ended = time.monotonic()
        cpu = cpu_seconds() - cpu_before
    finally:
        await session.close()
    tally, elapsed = client.tally, ended - started
    return {
        "target": args.target,
        "mode": "closed" if args.rate is None else "open",
        "concurrency": args.concurrency if args.rate is None else None,
        "rate": args.rate,
        "requests": tally.requests,
        "ok": len(tally.latencies),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "elapsed_s": elapsed,
        "throughput_rps": len(tally.latencies) / elapsed if elapsed > 0 else 0.0,
        "latency_ms": latency_summary(tally.latencies),
        "loadgen_cpu_s": cpu,
        "loadgen_cpu_share": cpu / elapsed if elapsed > 0 else 0.0,  # 1.0 = one core busy all the time
        "ended_monotonic": ended,  # CLOCK_MONOTONIC is system-wide: the orchestrator compares it with its own
        "created": {str(key): value for key, value in tally.created.items()},
        "orders": tally.orders,
        **({"latencies_s": tally.latencies} if args.keep_latencies else {}),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="service base URL (loopback)")
    parser.add_argument("--target", required=True, choices=sorted(EXPECTED))
    parser.add_argument("--ids", required=True, help="JSON file with the customer ids to use")
    parser.add_argument("--concurrency", type=int, default=32, help="closed loop: clients")
    parser.add_argument("--duration", type=float, default=10.0, help="closed loop: seconds")
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument("--count", type=int, default=200, help="open loop: requests in all")
    parser.add_argument(
        "--connections",
        type=int,
        default=OPEN_LOOP_CONNECTIONS,
        help=f"open loop: connections at most (default {OPEN_LOOP_CONNECTIONS})",
    )
    parser.add_argument(
        "--keep-latencies",
        action="store_true",
        help="add every latency (seconds, of the expected answers) to the result, for pooling several runs",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help="'Name: value' sent with every request, e.g. 'Authorization: Bearer <token>' (repeatable)",
    )
    parser.add_argument("--out", help="write the result to this file instead of stdout")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or (args.rate is not None and args.rate <= 0):
        parser.error("concurrency, duration and rate must be positive")
    return args


def main() -> None:
    args = parse_args()
    with open(args.ids) as file:
        ids = [value if args.target == "get-path" else int(value) for value in json.load(file)]
    if not ids:
        raise SystemExit("loadgen: --ids holds no ids")
    result = json.dumps(uvloop.run(run(args, ids)))
    if args.out:
        Path(args.out).write_text(result)
    else:
        sys.stdout.write(result + "\n")


if __name__ == "__main__":
    main()
