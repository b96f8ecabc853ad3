"""Ours with tracing on: the same POST /orders load on a fresh system of its own (its own ports,
databases and names, started beside the idle round's systems), every request, statement and event
exported over OTLP to a sink this process runs; throughput and CPU per order against tracing off."""

import argparse
import contextlib

from aiohttp import web
from cpu import cpu_ms_per_order, cpu_sample, cpu_used
from figure import Figure, dig, over
from systems import Ours
from target import Round, Target, check_exact, create_customers, started, write_ids
from variant import OursVariant


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracing-duration",
        type=float,
        default=10.0,
        help="ours: seconds of POST /orders again with tracing on (default 10; 0 skips)",
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


def traced_ours(workers: int, endpoint: str) -> OursVariant:
    """Our services with tracing on, sampling every trace, exporting to `endpoint`."""
    exclude = "^/health$,^/ready$,^/metrics$"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS": exclude}
    return OursVariant(workers, "traced", 3310, env)


async def traced_post_orders(args: argparse.Namespace) -> dict:
    async with contextlib.AsyncExitStack() as stack:
        sink = OtlpSink()
        system = traced_ours(args.workers, await sink.start(stack))
        target = Target(system, *await started(system, stack))
        ids = await create_customers(target.http, system.customer_url, args.customers)
        ids_file = write_ids("traced-load.json", ids)
        if args.warmup:
            await target.post_orders(ids_file, duration=args.warmup, concurrency=args.concurrency)
        target.say(f"POST /orders with tracing on: {args.concurrency} clients for {args.tracing_duration:g} s")
        before = cpu_sample(system)
        load = await target.post_orders(ids_file, duration=args.tracing_duration, concurrency=args.concurrency)
        sync = await target.converged(ids, load["ended_monotonic"])
        after = cpu_sample(system)
        exact = (await check_exact(target.http, system, target.created, ids))["exact"] and sync["exact"]
        return {
            "post_orders": load,
            "exact": exact,
            "otlp_exports": sink.exports,
            "otlp_bytes": sink.bytes,
            "cpu_ms_per_order": cpu_ms_per_order(cpu_used(before, after), load["loadgen_cpu_s"], load["ok"]),
        }


async def run(bench: Round) -> None:
    target = bench.targets.get(Ours.name)
    if not bench.args.tracing_duration or target is None:
        return
    traced = bench.results[target.name]["traced"] = await traced_post_orders(bench.args)
    target.syncs.append({"exact": traced["exact"]})


FIGURES = [
    Figure(
        "traced_post_ratio",
        "POST /orders with tracing on (OTLP export) / off, orders/s",
        2,
        over(dig("traced", "post_orders", "throughput_rps"), dig("post_orders", "throughput_rps")),
    ),
    Figure(
        "traced_cpu_ratio",
        "CPU ms/order, both services, tracing on / off",
        2,
        over(dig("traced", "cpu_ms_per_order", "both"), dig("cpu_ms_per_order", "both")),
    ),
]
