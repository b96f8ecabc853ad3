"""Ours with tracing on, at the sampling an operator would run: the same POST /orders load on two fresh
systems of ours (their own ports, databases and names, started beside the idle round's systems), both
exporting over OTLP to a sink this process runs, with `OTEL_TRACES_SAMPLER=parentbased_traceidratio` at
10 % and at 0 (every request unsampled: what an unsampled request costs). Their slices alternate with
slices of the round's own system, tracing off, so a slow minute of the machine falls on all three;
throughput and CPU per order against tracing off."""

import argparse
import contextlib
from collections import Counter

from aiohttp import web
from cpu import cpu_ms_per_order, cpu_sample, cpu_used
from figure import Figure, at_most, dig, over
from phases.post_load import merged_load
from systems import Ours
from target import Round, Target, alternated, check_exact, create_customers, started, write_ids
from variant import OursVariant

SAMPLED = {"ten_percent": 0.1, "unsampled": 0.0}  # result key -> OTEL_TRACES_SAMPLER_ARG


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracing-duration",
        type=float,
        default=10.0,
        help="ours: seconds of POST /orders for each of tracing off, sampled at 10 %% and unsampled "
        "(default 10; 0 skips)",
    )


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


def traced_ours(workers: int, endpoint: str, key: str, ratio: float, port: int) -> OursVariant:
    """Our services with tracing on, sampling `ratio` of the traces they start."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(ratio),
        "OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS": "^/health$,^/ready$,^/metrics$",
    }
    return OursVariant(workers, f"traced-{key.replace('_', '-')}", port, env)


async def traced_target(args: argparse.Namespace, stack: contextlib.AsyncExitStack, system: OursVariant) -> Target:
    target = Target(system, *await started(system, stack))
    target.load_ids = target.checked = await create_customers(target.http, system.customer_url, args.customers)
    write_ids(target.load_file.name, target.load_ids)
    if args.warmup:
        warm = await target.post_orders(target.load_file, duration=args.warmup, concurrency=args.concurrency)
        await target.converged(target.load_ids, warm["ended_monotonic"])
    return target


async def alternated_loads(targets: dict[str, Target], args: argparse.Namespace) -> dict[str, dict]:
    """POST /orders on each target in `args.slices` slices, the targets alternated slice by slice."""
    seconds = args.tracing_duration / args.slices
    loads: dict[str, list[dict]] = {key: [] for key in targets}
    used: dict[str, Counter] = {key: Counter() for key in targets}
    for number in range(args.slices):
        for key, target in alternated(list(targets.items()), number):
            target.say(f"POST /orders ({key}): {args.concurrency} clients, slice {number + 1} of {args.slices}")
            before = cpu_sample(target.system)
            load = await target.post_orders(
                target.load_file, duration=seconds, concurrency=args.concurrency, keep_latencies=True
            )
            await target.converged(target.load_ids, load["ended_monotonic"])
            used[key].update(cpu_used(before, cpu_sample(target.system)))
            loads[key].append(load)
    results = {}
    for key, target in targets.items():
        load = merged_load(loads[key])
        exact = (await check_exact(target.http, target.system, target.created, target.load_ids))["exact"]
        results[key] = {
            "post_orders": load,
            "exact": exact and all(sync["exact"] for sync in target.syncs),
            "cpu_ms_per_order": cpu_ms_per_order(dict(used[key]), load["loadgen_cpu_s"], load["ok"]),
        }
    return results


async def run(bench: Round) -> None:
    off = bench.targets.get(Ours.name)
    args = bench.args
    if not args.tracing_duration or off is None:
        return
    async with contextlib.AsyncExitStack() as stack:
        sink = OtlpSink()
        endpoint = await sink.start(stack)
        targets = {"off": off}
        for n, (key, ratio) in enumerate(SAMPLED.items()):
            system = traced_ours(args.workers, endpoint, key, ratio, 3310 + 2 * n)
            targets[key] = await traced_target(args, stack, system)
        traced = await alternated_loads(targets, args)
    traced.update(otlp_exports=sink.exports, otlp_bytes=sink.bytes)
    bench.results[off.name]["traced"] = traced
    off.syncs.append({"exact": all(traced[key]["exact"] for key in targets)})


def _ratio(key: str, *path: str):
    return over(dig("traced", key, *path), dig("traced", "off", *path))


FIGURES = [
    Figure(
        "traced_10_cpu_ratio",
        "CPU ms/order, both services, tracing sampled at 10 % / off",
        2,
        _ratio("ten_percent", "cpu_ms_per_order", "both"),
        "≤ 1.05",
        at_most(1.05),
    ),
    Figure(
        "traced_10_post_ratio",
        "POST /orders, tracing sampled at 10 % / off, orders/s",
        2,
        _ratio("ten_percent", "post_orders", "throughput_rps"),
    ),
    Figure(
        "unsampled_cpu_ratio",
        "CPU ms/order, both services, every request unsampled / tracing off",
        2,
        _ratio("unsampled", "cpu_ms_per_order", "both"),
        "≤ 1.02",
        at_most(1.02),
    ),
    Figure(
        "unsampled_post_ratio",
        "POST /orders, every request unsampled / tracing off, orders/s",
        2,
        _ratio("unsampled", "post_orders", "throughput_rps"),
    ),
]
