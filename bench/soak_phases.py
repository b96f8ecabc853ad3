"""The soak's phases: start the system and the load, sample, cut the broker, and wait for exact counts.

`soak()` starts everything (each stop pushed on the caller's exit stack) and runs the load: warm-up, the
measured minutes with the broker cut in the middle, convergence and a settled sample. Soak holds what one
run learns on the way (its samples, the phase marks, the outage's recovery) for the verdict.
"""

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import report
from cpu import machine_busy_seconds
from soak_load import PROGRESS_EVERY, SteadyLoad
from soak_system import (
    PROXY_PORT,
    BrokerProxy,
    SoakSystem,
    broker_channels,
    process_rows,
    proxied_url,
    ready_status,
    scrape,
)
from systems import AMQP_URL, HOST, BenchError, port_in_use
from target import LOADGEN_GRACE, check_exact, create_customers, started, wait_exact, write_ids

SETTLE_SECONDS = 10.0  # idle after convergence, past gunicorn's 5 s keep-alive, before the "settled" sample
BROKER_SAMPLE_EVERY = 3  # rabbitmqctl is costly: every 3rd sample only, plus the named ones
RECOVERY_DEADLINE = 60.0  # after the restore, for /ready and the outbox backlog to come back
RECOVERED_BACKLOG = 5  # outbox rows still pending that count as "caught up" under steady load


def say(message: str) -> None:
    print(f"[soak] {message}", flush=True)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


@dataclass
class Soak:
    args: argparse.Namespace
    system: SoakSystem
    proxy: BrokerProxy
    http: aiohttp.ClientSession
    load: SteadyLoad
    t0: float = 0.0  # the load's start (CLOCK_MONOTONIC)
    marks: dict[str, float] = field(default_factory=dict)  # seconds since t0: warm, cut, restored, end
    samples: list[dict] = field(default_factory=list)
    outage: dict = field(default_factory=dict)

    @property
    def load_seconds(self) -> float:
        return self.args.warmup + self.args.minutes * 60

    def now(self) -> float:
        return time.monotonic() - self.t0

    def phase(self, t: float) -> str:
        if t < self.marks.get("warm", 0):
            return "warm-up"
        if "cut" not in self.marks or t < self.marks["cut"]:
            return "before cut"
        if "restored" not in self.marks or t < self.marks["restored"]:
            return "during cut"
        if "end" not in self.marks or t <= self.marks["end"] + PROGRESS_EVERY:
            return "after cut"
        return "after load"

    async def sample(self, label: str | None = None, with_broker: bool = True) -> dict:
        t = self.now()
        rows = await asyncio.to_thread(process_rows, self.system, self.proxy.port)
        channels = await broker_channels() if with_broker else None
        if channels is not None:
            for row in rows:
                upstream = [self.proxy.upstream_of.get(port) for port in row["broker_ports"]]
                known = all(port in channels for port in upstream)
                row["broker_channels"] = sum(channels[port] for port in upstream) if known else None
        customer, order, ready_customer, ready_order = await asyncio.gather(
            scrape(self.http, self.system.customer_url),
            scrape(self.http, self.system.order_url),
            ready_status(self.http, self.system.customer_url),
            ready_status(self.http, self.system.order_url),
        )
        record = {
            "t": round(t, 2),
            "phase": self.phase(t),
            "label": label,
            "processes": rows,
            "rabbitmqctl": channels is not None,
            "machine_busy_s": machine_busy_seconds(),
            "ready": {"customer": ready_customer, "order": ready_order},
            "outbox_pending": order.get("outbox_pending_events"),
            "metrics": {"customer": customer, "order": order},
        }
        self.samples.append(record)
        self.print_sample(record)
        return record

    def print_sample(self, record: dict) -> None:
        window = (record["t"] - self.args.sample_every, record["t"])
        recent = [i for i in self.load.intervals if window[0] < i["t"] - self.t0 <= window[1]]
        rate = sum(i["ok"] for i in recent) / self.args.sample_every if recent else 0.0
        errors = sum(sum(i["errors"].values()) for i in recent)
        parts = [f"t={record['t']:5.0f} s  {record['phase']:<11}", f"201/s {rate:5.1f} err {errors}"]
        for service in ("customer", "order"):
            rows = [r for r in record["processes"] if r["service"] == service]
            workers = [r for r in rows if r["role"] == "worker"] or rows
            channels = [r.get("broker_channels") for r in rows]
            shown = "-" if None in channels else sum(channels)
            parts.append(
                f"{service}: RSS {max((r['rss_mb'] for r in workers), default=0):.1f} MB "
                f"fds {sum(r['fds'] for r in rows)} amqp {sum(len(r['broker_ports']) for r in rows)} "
                f"ch {shown} pg {sum(r['pg_conns'] for r in rows)}"
            )
        ready = record["ready"]
        parts.append(
            f"outbox {report.fmt(record['outbox_pending'], 0)}  ready {ready['customer']}/{ready['order']}"
            + (f"  [{record['label']}]" if record["label"] else "")
        )
        say(" | ".join(parts))

    async def sample_during_load(self) -> None:
        """Every --sample-every s, plus one right after the warm-up and one just before the load ends."""
        every, warm = self.args.sample_every, self.args.warmup
        last = self.load_seconds - min(1.0, every / 2)
        offsets = sorted({*(k * every for k in range(int(last // every) + 1) if k * every < last), warm, last})
        for n, offset in enumerate(offsets):
            await sleep_until(self.t0 + offset)
            label = {warm: "after warm-up", last: "end of load"}.get(offset)
            await self.sample(label, with_broker=label is not None or n % BROKER_SAMPLE_EVERY == 0)

    async def cut_broker(self) -> None:
        """In the middle of the measured part: drop and refuse the broker for --outage s, then watch the recovery."""
        args = self.args
        cut_at = args.warmup + (args.minutes * 60 - args.outage) / 2
        await sleep_until(self.t0 + cut_at)
        trace: list[dict] = []
        watcher = asyncio.create_task(self.watch(trace))
        try:
            await self.proxy.cut()
            self.marks["cut"] = self.now()
            say(
                f"broker proxy CUT at t={self.marks['cut']:.1f} s: connections dropped, new ones refused "
                f"for {args.outage:g} s"
            )
            await asyncio.sleep(args.outage)
        finally:
            await cancel_and_wait(watcher)
        try:
            await self.proxy.restore()
        except OSError as exc:
            raise BenchError(f"could not listen on {HOST}:{self.proxy.port} again: {exc}") from None
        self.marks["restored"] = self.now()
        say(f"broker proxy RESTORED at t={self.marks['restored']:.1f} s")
        recovered = await self.wait_recovered(trace)
        pending = [point["outbox_pending"] for point in trace if point["outbox_pending"] is not None]
        self.outage = {
            "cut_at_s": self.marks["cut"],
            "restored_at_s": self.marks["restored"],
            "recovered_after_s": None if recovered is None else recovered - self.marks["restored"],
            "backlog_peak": max(pending, default=None),
            "trace": trace,
        }
        if recovered is None:
            say(f"NOT recovered {RECOVERY_DEADLINE:.0f} s after the restore")
        else:
            say(
                f"recovered {recovered - self.marks['restored']:.1f} s after the restore (both /ready 200, outbox "
                f"backlog ≤ {RECOVERED_BACKLOG}); backlog peak {report.fmt(self.outage['backlog_peak'], 0)}"
            )

    async def probe(self) -> dict:
        order, ready_customer, ready_order = await asyncio.gather(
            scrape(self.http, self.system.order_url),
            ready_status(self.http, self.system.customer_url),
            ready_status(self.http, self.system.order_url),
        )
        return {
            "t": round(self.now(), 2),
            "outbox_pending": order.get("outbox_pending_events"),
            "ready": {"customer": ready_customer, "order": ready_order},
        }

    async def watch(self, trace: list[dict]) -> None:
        """Every second during the cut: the outbox backlog and /ready (until the recovery takes over)."""
        while True:
            trace.append(await self.probe())
            await asyncio.sleep(1)

    async def wait_recovered(self, trace: list[dict]) -> float | None:
        """Seconds since t0 when both services were ready and the backlog drained; None past the deadline."""
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while time.monotonic() < deadline:
            point = await self.probe()
            trace.append(point)
            pending = point["outbox_pending"]
            if set(point["ready"].values()) == {200} and pending is not None and pending <= RECOVERED_BACKLOG:
                return point["t"]
            await asyncio.sleep(0.5)
        return None


async def start(stack: contextlib.AsyncExitStack, args: argparse.Namespace):
    """The broker proxy and our system behind it, ready; an HTTP session and the customer database."""
    if port_in_use(PROXY_PORT):
        raise BenchError(f"port {PROXY_PORT} (the soak's broker proxy) is already in use")
    proxy = BrokerProxy(AMQP_URL)
    await proxy.start(PROXY_PORT)
    stack.push_async_callback(proxy.close)
    system = SoakSystem(args.workers, proxied_url(AMQP_URL, proxy.port))
    say(
        f"broker proxy on {HOST}:{proxy.port} -> {proxy.target[0]}:{proxy.target[1]}; "
        f"resetting bench databases and queues, starting {args.workers} worker(s) per service"
    )
    http, db = await started(system, stack)
    return proxy, system, http, db


async def soak(stack: contextlib.AsyncExitStack, args: argparse.Namespace, result: dict) -> None:
    """Everything between start and stop; what it learns goes into `result` as it goes."""
    proxy, system, http, db = await start(stack, args)
    say(f"ready; creating {args.customers} customers")
    ids = await create_customers(http, system.customer_url, args.customers)
    ids_file = write_ids("soak-load.json", ids)
    load = SteadyLoad()
    stack.push_async_callback(load.stop)
    run = Soak(args, system, proxy, http, load)
    result["soak"] = run
    say(
        f"load: {args.rate:g} orders/s, {args.warmup:g} s warm-up + {args.minutes:g} min, broker cut "
        f"{args.outage:g} s in the middle"
    )
    await load.start(system.order_url, ids_file, args.rate, run.load_seconds)
    run.t0 = load.started
    run.marks["warm"] = args.warmup
    tasks = [
        asyncio.create_task(run.sample_during_load(), name="soak sampler"),
        asyncio.create_task(run.cut_broker(), name="soak broker cut"),
    ]
    for task in tasks:
        stack.push_async_callback(cancel_and_wait, task)

    waiting = asyncio.create_task(load.wait(run.load_seconds + LOADGEN_GRACE - run.now()))
    stack.push_async_callback(cancel_and_wait, waiting)
    # A sampler or a cut that fails ends the soak at once, not when the load is over.
    for task in (await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_EXCEPTION))[0]:
        if task.exception() is not None:
            raise task.exception()
    final = await waiting
    run.marks["end"] = final["ended"] - run.t0
    await tasks[0]  # its last sample was due a moment before the load's end
    await tasks[1]  # the cut is over long before the load ends; at most the recovery watch is left
    created = Counter({int(cid): n for cid, n in final.pop("created").items()})
    result["load"] = final

    say("load over; waiting until every orders_count is exact")
    result["convergence"] = await wait_exact(db, created, ids, final["ended"])
    # Idle long enough for the load's keep-alive connections to close; sampled before the check over
    # HTTP, whose parallel requests open connections of their own.
    await asyncio.sleep(SETTLE_SECONDS)
    await run.sample("settled")
    result["exactness"] = await check_exact(http, system, created, ids)


async def cancel_and_wait(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
