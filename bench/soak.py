"""Soak: minutes of steady POST /orders with a broker outage in the middle; exactness and resource growth.

    python bench/soak.py [--minutes M] [--rate R] [--workers W] [--customers K] [--warmup S] [--outage S]

Starts our services as bench/run.py does (bench databases and broker names, ports 3300/3301), but with
AMQP_URL pointing at a TCP proxy this process runs on 127.0.0.1:3302 in front of RabbitMQ. A load generator
in its own process sends R orders/s (open loop) over K customers for a warm-up and then M minutes. In the
middle the proxy drops every broker connection and refuses new ones for --outage seconds: a broker restart
as the services see it (the shared broker is never touched). Every --sample-every seconds it records RSS,
open file descriptors and TCP connections of every gunicorn process, the channels RabbitMQ holds for them
(rabbitmqctl, when it works here), /ready and the outbox backlog. After the load it waits until every count
is exact, checks orders created (201) = orders stored = orders_count customer by customer, and compares the
end with the sample taken right after the warm-up.

Prints the tables and writes bench/results/soak-<timestamp>.json; service logs go to bench/.run/soak.log.
Exit status: 0 every check passed, 1 a check failed, 2 the soak itself could not run.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import psutil
import report
import uvloop
from loadgen import OPEN_LOOP_CONNECTIONS, REQUEST_TIMEOUT, Client, cpu_seconds, latency_summary
from prometheus_client.parser import text_string_to_metric_families
from run import RESULTS_DIR, check_exact, create_customers, git_commit, wait_exact, write_ids
from systems import AMQP_URL, HOST, RUN_DIR, BenchError, Ours, machine_busy_seconds, port_in_use

from shared.testing.proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
PROXY_PORT = 3302  # below the ephemeral range, so nothing else takes it while the "broker" is down
PG_PORT = 5432

RSS_GROWTH_LIMIT = 0.10  # RSS at the end may exceed the RSS after warm-up by this share
# Open file descriptors other than PostgreSQL connections may grow by this many. The keep-alive
# connections of a load are gone once settled; the PostgreSQL pool may grow up to its bound.
FD_SLACK = 4
PG_POOL_BOUND = 10 + 1  # shared/db.py's pool maxsize per worker, plus the outbox relay's LISTEN connection
SETTLE_SECONDS = 10.0  # idle after convergence, past gunicorn's 5 s keep-alive, before the "settled" sample
BROKER_SAMPLE_EVERY = 3  # rabbitmqctl costs ~1 CPU-second: every 3rd sample only, plus the named ones
RABBITMQCTL_TIMEOUT = 15.0
PROGRESS_EVERY = 1.0  # seconds between the load generator's progress lines
LOADGEN_START_TIMEOUT = 30.0
LOADGEN_GRACE = 60.0  # past the load's own duration, before the load generator counts as hung
RECOVERY_DEADLINE = 60.0  # after the restore, for /ready and the outbox backlog to come back
RECOVERED_BACKLOG = 5  # outbox rows still pending that count as "caught up" under steady load
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2)
EVENT_METRICS = ("outbox_pending_events", "events_published_total", "events_consumed_total",
                 "events_duplicate_total", "events_retried_total", "events_dead_lettered_total")


def say(message: str) -> None:
    print(f"[soak] {message}", flush=True)


# --- the load generator: a child process (`soak.py loadgen ...`), so its CPU is not the soak's ----------


def emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Progress:
    """What the load generator reports every second: the 201s (with latencies) and errors since last time."""

    def __init__(self, client: Client, in_flight: set) -> None:
        self.tally, self.in_flight = client.tally, in_flight
        self.seen, self.errors = 0, Counter()

    def report(self) -> None:
        new = self.tally.latencies[self.seen:]
        self.seen += len(new)
        errors = self.tally.errors - self.errors
        self.errors = self.tally.errors.copy()
        emit({"t": time.monotonic(), "ok": len(new), "lat_ms": [round(value * 1000, 2) for value in new],
              "errors": dict(errors), "sent": self.tally.requests, "in_flight": len(self.in_flight)})


async def steady_load(url: str, ids: list[int], rate: float, duration: float) -> None:
    """One POST /orders every 1/rate s, whatever the answers (open loop); latency counts from the schedule."""
    parent, main = os.getppid(), asyncio.current_task()
    connector = aiohttp.TCPConnector(limit=OPEN_LOOP_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        client, in_flight = Client(session, url, "post-order", keep_orders=False), set()
        progress = Progress(client, in_flight)

        async def reporter() -> None:
            while True:
                await asyncio.sleep(PROGRESS_EVERY)
                progress.report()
                if os.getppid() != parent:  # the soak died without stopping us
                    main.cancel()

        start = time.monotonic()
        emit({"started": start})
        reporting = asyncio.create_task(reporter())
        next_id = itertools.cycle(ids).__next__
        try:
            for i in range(round(rate * duration)):
                scheduled = start + i / rate
                await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
                task = asyncio.create_task(client.send(next_id(), scheduled))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:  # each is bounded by REQUEST_TIMEOUT
                await asyncio.wait(set(in_flight))
        finally:
            reporting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporting
        progress.report()
    tally = client.tally
    emit({"final": True, "ended": time.monotonic(), "sent": tally.requests, "ok": len(tally.latencies),
          "errors": dict(tally.errors), "created": {str(key): value for key, value in tally.created.items()},
          "cpu_s": cpu_seconds()})


def loadgen_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="soak.py loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    ids = [int(value) for value in json.loads(Path(args.ids).read_text())]
    try:
        uvloop.run(steady_load(args.url, ids, args.rate, args.duration))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130
    return 0


class SteadyLoad:
    """The load generator process, seen from the soak: its progress lines as they come, then its result."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.started: float | None = None  # its CLOCK_MONOTONIC (system-wide) at the first request
        self.intervals: list[dict] = []
        self.final: dict | None = None
        self.log_path = RUN_DIR / "soak-loadgen.log"
        self._reader: asyncio.Task | None = None
        self._started = asyncio.Event()

    async def start(self, url: str, ids_file: Path, rate: float, duration: float) -> None:
        args = [sys.executable, __file__, "loadgen", "--url", url, "--ids", str(ids_file),
                "--rate", str(rate), "--duration", str(duration)]
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=log,
                                                                limit=2**24)
        self._reader = asyncio.create_task(self._read(), name="soak loadgen reader")
        started = asyncio.create_task(self._started.wait())
        try:
            await asyncio.wait({started, self._reader}, timeout=LOADGEN_START_TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if self.started is None:
            raise BenchError(f"the load generator did not start; see {self.log_path}")

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            record = json.loads(line)
            if "started" in record:
                self.started = record["started"]
                self._started.set()
            elif record.get("final"):
                self.final = record
            else:
                self.intervals.append(record)

    async def wait(self, timeout: float) -> dict:
        assert self.process is not None and self._reader is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            raise BenchError("the load generator hung") from None
        if self.process.returncode != 0 or self.final is None:
            raise BenchError(f"the load generator failed ({self.process.returncode}); see {self.log_path}")
        return self.final

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ValueError):
                await self._reader


# --- the system, the broker proxy and what we sample -------------------------------------------------------


class BrokerProxy(TcpProxy):
    """The shared TcpProxy in front of RabbitMQ, remembering which upstream port carries each service connection.

    RabbitMQ only sees the proxy's own connections; this ties each back to the service process behind it.
    """

    def __init__(self, amqp_url: str) -> None:
        target = urlsplit(amqp_url)
        super().__init__(target.hostname or HOST, target.port or 5672)
        self.upstream_of: dict[int, int] = {}  # service's local port -> proxy's local port towards the broker

    async def _accept(self, client_reader, client_writer) -> None:
        # TcpProxy keeps its open writers in `_writers`; were that to change, channels would just be unknown.
        before = set(getattr(self, "_writers", ()))
        await super()._accept(client_reader, client_writer)
        client_port = client_writer.get_extra_info("peername")[1]
        for writer in set(getattr(self, "_writers", ())) - before - {client_writer}:
            self.upstream_of[client_port] = writer.get_extra_info("sockname")[1]


def proxied_url(url: str, port: int) -> str:
    """`url` (credentials and vhost kept) with its address replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{HOST}:{port}" if userinfo else f"{HOST}:{port}"))


class SoakSystem(Ours):
    """Our services exactly as the bench runs them, but reaching RabbitMQ through the soak's proxy."""

    name = "soak"  # its log: bench/.run/soak.log

    def __init__(self, workers: int, amqp_url: str) -> None:
        super().__init__(workers)
        self.amqp_url = amqp_url

    def env(self) -> dict:
        return {**super().env(), "AMQP_URL": self.amqp_url}


def process_row(service: str, role: str, process: psutil.Process, proxy_port: int) -> dict:
    with process.oneshot():
        rss = process.memory_info().rss / 2**20
        fds = process.num_fds()
        threads = process.num_threads()
        cpu = process.cpu_times()
    sockets = process.net_connections(kind="tcp")
    established = [s for s in sockets if s.status == psutil.CONN_ESTABLISHED and s.raddr]
    return {
        "service": service, "role": role, "pid": process.pid, "rss_mb": rss, "fds": fds, "threads": threads,
        "cpu_s": cpu.user + cpu.system,
        "broker_ports": sorted(s.laddr.port for s in established if s.raddr.port == proxy_port),
        "pg_conns": sum(s.raddr.port == PG_PORT for s in established),
        "close_wait": sum(s.status == psutil.CONN_CLOSE_WAIT for s in sockets),
        "tcp": len(sockets),
    }


def process_rows(system: SoakSystem, proxy_port: int) -> list[dict]:
    """One row per gunicorn process (masters and workers of both services)."""
    rows = []
    for service, master in sorted(system.masters().items()):
        with contextlib.suppress(psutil.Error):
            for role, process in [("master", master), *(("worker", w) for w in master.children())]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    rows.append(process_row(service, role, process, proxy_port))
    return rows


async def broker_channels() -> dict[int, int] | None:
    """Channels of every broker connection on this node, by the connection's peer port; None if unknown.

    rabbitmqctl needs the node's Erlang cookie (root, or the rabbitmq user); without it the soak does
    without channel counts.
    """
    args = ["rabbitmqctl", "-q", "--no-table-headers", "list_connections", "peer_port", "channels"]
    try:
        process = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), RABBITMQCTL_TIMEOUT)
    except TimeoutError:
        return None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        return None
    channels = {}
    for line in stdout.decode(errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
            channels[int(fields[0])] = int(fields[1])
    return channels


async def scrape(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The event and outbox figures of a /metrics page, summed over labels; {} when it does not answer."""
    try:
        async with http.get(f"{base}/metrics", timeout=PROBE_TIMEOUT) as response:
            if response.status != 200:
                return {}
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    totals: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in EVENT_METRICS:
                totals[sample.name] += sample.value
    return dict(totals)


async def ready_status(http: aiohttp.ClientSession, base: str) -> int | None:
    try:
        async with http.get(f"{base}/ready", timeout=PROBE_TIMEOUT) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


# --- the soak ---------------------------------------------------------------------------------------------


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
            scrape(self.http, self.system.customer_url), scrape(self.http, self.system.order_url),
            ready_status(self.http, self.system.customer_url), ready_status(self.http, self.system.order_url))
        record = {
            "t": round(t, 2), "phase": self.phase(t), "label": label, "processes": rows,
            "rabbitmqctl": channels is not None, "machine_busy_s": machine_busy_seconds(),
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
            parts.append(f"{service}: RSS {max((r['rss_mb'] for r in workers), default=0):.1f} MB "
                         f"fds {sum(r['fds'] for r in rows)} amqp {sum(len(r['broker_ports']) for r in rows)} "
                         f"ch {shown} pg {sum(r['pg_conns'] for r in rows)}")
        ready = record["ready"]
        parts.append(f"outbox {report.fmt(record['outbox_pending'], 0)}  ready {ready['customer']}/{ready['order']}"
                     + (f"  [{record['label']}]" if record["label"] else ""))
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
            say(f"broker proxy CUT at t={self.marks['cut']:.1f} s: connections dropped, new ones refused "
                f"for {args.outage:g} s")
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
            "cut_at_s": self.marks["cut"], "restored_at_s": self.marks["restored"],
            "recovered_after_s": None if recovered is None else recovered - self.marks["restored"],
            "backlog_peak": max(pending, default=None), "trace": trace,
        }
        if recovered is None:
            say(f"NOT recovered {RECOVERY_DEADLINE:.0f} s after the restore")
        else:
            say(f"recovered {recovered - self.marks['restored']:.1f} s after the restore (both /ready 200, outbox "
                f"backlog ≤ {RECOVERED_BACKLOG}); backlog peak {report.fmt(self.outage['backlog_peak'], 0)}")

    async def probe(self) -> dict:
        order, ready_customer, ready_order = await asyncio.gather(
            scrape(self.http, self.system.order_url), ready_status(self.http, self.system.customer_url),
            ready_status(self.http, self.system.order_url))
        return {"t": round(self.now(), 2), "outbox_pending": order.get("outbox_pending_events"),
                "ready": {"customer": ready_customer, "order": ready_order}}

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


async def soak(stack: contextlib.AsyncExitStack, args: argparse.Namespace, result: dict) -> None:
    """Everything between start and stop; what it learns goes into `result` as it goes."""
    if port_in_use(PROXY_PORT):
        raise BenchError(f"port {PROXY_PORT} (the soak's broker proxy) is already in use")
    proxy = BrokerProxy(AMQP_URL)
    await proxy.start(PROXY_PORT)
    stack.push_async_callback(proxy.close)
    system = SoakSystem(args.workers, proxied_url(AMQP_URL, proxy.port))
    say(f"broker proxy on {HOST}:{proxy.port} -> {proxy.target[0]}:{proxy.target[1]}; "
        f"resetting bench databases and queues, starting {args.workers} worker(s) per service")
    await system.reset()
    stack.push_async_callback(system.stop)
    await system.start()
    http = await stack.enter_async_context(aiohttp.ClientSession(timeout=HTTP_TIMEOUT))
    await system.wait_ready(http)
    db = await asyncpg.connect(system.database_url(system.databases[0]), timeout=5)
    stack.push_async_callback(db.close)

    say(f"ready; creating {args.customers} customers")
    ids = await create_customers(http, system.customer_url, args.customers)
    ids_file = write_ids("soak-load.json", ids)
    load = SteadyLoad()
    stack.push_async_callback(load.stop)
    run = Soak(args, system, proxy, http, load)
    result["soak"] = run
    say(f"load: {args.rate:g} orders/s, {args.warmup:g} s warm-up + {args.minutes:g} min, broker cut "
        f"{args.outage:g} s in the middle")
    await load.start(system.order_url, ids_file, args.rate, run.load_seconds)
    run.t0 = load.started
    run.marks["warm"] = args.warmup
    tasks = [asyncio.create_task(run.sample_during_load(), name="soak sampler"),
             asyncio.create_task(run.cut_broker(), name="soak broker cut")]
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


# --- the verdict ------------------------------------------------------------------------------------------


def phase_stats(run: Soak) -> list[dict]:
    """201s, errors and latency of the load generator's answers, by phase (1 s resolution)."""
    phases: dict[str, list[dict]] = {}
    for interval in run.load.intervals:
        phases.setdefault(run.phase(interval["t"] - run.t0), []).append(interval)
    phases["all"] = run.load.intervals
    rows = []
    for name, intervals in phases.items():
        latencies = [value / 1000 for i in intervals for value in i["lat_ms"]]
        errors = Counter()
        for interval in intervals:
            errors.update(interval["errors"])
        seconds = len(intervals) * PROGRESS_EVERY
        rows.append({"phase": name, "seconds": seconds, "ok": len(latencies), "errors": sum(errors.values()),
                     "error_kinds": dict(errors), "rps": len(latencies) / seconds if seconds else None,
                     "latency_ms": latency_summary(latencies)})
    return rows


def by_pid(sample: dict) -> dict[int, dict]:
    return {row["pid"]: row for row in sample["processes"]}


def channels_of(row: dict) -> int | None:
    return row.get("broker_channels")


def compare_processes(warm: dict, load_end: dict, settled: dict) -> list[dict]:
    """Per process: after warm-up vs the end, with a verdict.

    RSS: the larger of the end of the load and the settled sample. Descriptors, connections and channels:
    the settled sample (idle, keep-alive connections closed), so what is left is what the process holds.
    """
    rows, at_end, now = [], by_pid(load_end), by_pid(settled)
    for pid, before in by_pid(warm).items():
        row = {"service": before["service"], "role": before["role"], "pid": pid, "rss_warm": before["rss_mb"],
               "fds_warm": before["fds"], "broker_warm": len(before["broker_ports"]),
               "channels_warm": channels_of(before), "pg_warm": before["pg_conns"]}
        after = now.get(pid)
        if after is None:
            rows.append({**row, "pass": False, "why": ["gone (worker restarted?)"]})
            continue
        loaded = at_end.get(pid, after)
        row.update(rss_end=max(loaded["rss_mb"], after["rss_mb"]), fds_load_end=loaded["fds"], fds_end=after["fds"],
                   broker_end=len(after["broker_ports"]), channels_end=channels_of(after),
                   pg_end=after["pg_conns"], close_wait_end=after["close_wait"])
        row["rss_growth"] = row["rss_end"] / row["rss_warm"] - 1
        row["other_fds_growth"] = (row["fds_end"] - row["pg_end"]) - (row["fds_warm"] - row["pg_warm"])
        why = []
        if row["rss_growth"] > RSS_GROWTH_LIMIT:
            why.append(f"RSS +{row['rss_growth']:.1%}")
        if row["other_fds_growth"] > FD_SLACK:
            why.append(f"fds other than PostgreSQL +{row['other_fds_growth']}")
        if row["pg_end"] > max(row["pg_warm"], PG_POOL_BOUND):
            why.append(f"{row['pg_end']} PostgreSQL connections, over the pool's bound")
        if row["broker_end"] > row["broker_warm"]:
            why.append("more broker connections")
        if None not in (row["channels_warm"], row["channels_end"]) and row["channels_end"] > row["channels_warm"]:
            why.append("more channels")
        if row["close_wait_end"]:
            why.append(f"{row['close_wait_end']} sockets in CLOSE_WAIT")
        rows.append({**row, "pass": not why, "why": why})
    for pid, after in now.items():
        if pid not in by_pid(warm):
            rows.append({"service": after["service"], "role": after["role"], "pid": pid, "pass": False,
                         "why": ["new since warm-up (a worker restarted)"]})
    return rows


def log_summary(path: Path, limit: int = 12) -> dict:
    """Lines by level in the services' log, the WARNING+ messages grouped (digits folded) with counts, and
    any other line (a traceback, a tool's output) that mentions an error."""
    levels, messages, other = Counter(), Counter(), []
    plain = re.compile(r"^\[[^\]]+\] \[\d+\] \[(\w+)\] (.*)$")  # gunicorn's own lines
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level, service = record.get("level", "?"), record.get("service", "?")
            message = str(record.get("message", ""))
        elif match := plain.match(line):
            level, service, message = match[1], "gunicorn", match[2]
        else:
            if re.search(r"error|exception|traceback", line, re.IGNORECASE) and len(other) < limit:
                other.append(line[:200])
            continue
        levels[level] += 1
        if level in ("WARNING", "ERROR", "CRITICAL"):
            messages[f"{level} {service}: {re.sub(r'[0-9]+', 'N', message)[:160]}"] += 1
    return {"levels": dict(levels), "warnings": dict(messages.most_common(limit)), "other_error_lines": other}


def render(header: tuple, lines: list[tuple], aligns: str) -> str:
    cells = [tuple(str(cell) for cell in line) for line in [header, *lines]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    text = ["  ".join(f"{cell:{'<' if align == 'l' else '>'}{width}}"
                      for cell, align, width in zip(line, aligns, widths, strict=True)).rstrip() for line in cells]
    text.insert(1, "-" * max(len(line) for line in text))
    return "\n".join(text)


def arrow(before, after, digits: int = 0) -> str:
    return f"{report.fmt(before, digits)} → {report.fmt(after, digits)}"


def process_table(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        growth = row.get("rss_growth")
        lines.append((row["service"], row["role"], row["pid"], report.fmt(row.get("rss_warm"), 1),
                      report.fmt(row.get("rss_end"), 1), "-" if growth is None else f"{growth:+.1%}",
                      f"{report.fmt(row.get('fds_warm'), 0)} → {report.fmt(row.get('fds_load_end'), 0)} → "
                      f"{report.fmt(row.get('fds_end'), 0)}",
                      arrow(row.get("broker_warm"), row.get("broker_end")),
                      arrow(row.get("channels_warm"), row.get("channels_end")),
                      arrow(row.get("pg_warm"), row.get("pg_end")), report.fmt(row.get("close_wait_end"), 0),
                      "PASS" if row["pass"] else "FAIL " + "; ".join(row["why"])))
    header = ("service", "role", "pid", "RSS warm MB", "RSS end MB", "growth", "fds warm → load end → settled",
              "AMQP conns", "channels", "PG conns", "CLOSE_WAIT", "verdict")
    return render(header, lines, "lllrrrrrrrrl")


def load_table(phases: list[dict]) -> str:
    lines = []
    for row in phases:
        latency = row["latency_ms"]
        kinds = ", ".join(f"{kind} {n}" for kind, n in row["error_kinds"].items())
        lines.append((row["phase"], report.fmt(row["seconds"], 0), row["ok"], report.fmt(row["rps"], 1),
                      row["errors"] if not kinds else f"{row['errors']} ({kinds})",
                      report.fmt(latency["p50"], 1), report.fmt(latency["p99"], 1), report.fmt(latency["max"], 1)))
    return render(("phase", "s", "201s", "201/s", "errors", "p50 ms", "p99 ms", "max ms"), lines, "lrrrrrrr")


def cpu_line(run: Soak, warm: dict, end: dict, orders: int) -> tuple[str, dict]:
    """CPU of each service (its gunicorn processes) per order between the two samples, and the machine's load."""
    before = {row["pid"]: row["cpu_s"] for row in warm["processes"]}
    used = Counter()
    for row in end["processes"]:
        if row["pid"] in before:
            used[row["service"]] += row["cpu_s"] - before[row["pid"]]
    seconds = end["t"] - warm["t"]
    busy = (end["machine_busy_s"] - warm["machine_busy_s"]) / seconds if seconds > 0 else None
    figures = {f"{service}_cpu_ms_per_order": used[service] * 1000 / orders if orders else None
               for service in ("customer", "order")}
    figures["machine_cores_busy"] = busy
    text = (f"CPU per order: customer {report.fmt(figures['customer_cpu_ms_per_order'], 2)} ms, order "
            f"{report.fmt(figures['order_cpu_ms_per_order'], 2)} ms; the whole machine kept "
            f"{report.fmt(busy, 2)} of {os.cpu_count()} cores busy on average (everything, not only the soak)")
    return text, figures


def interval_summary(run: Soak, interval: dict) -> dict:
    """One second of the load for the JSON: its latency percentiles instead of every latency."""
    latency = latency_summary([value / 1000 for value in interval["lat_ms"]])
    return {"t": round(interval["t"] - run.t0, 2), "ok": interval["ok"], "errors": interval["errors"],
            "sent": interval["sent"], "in_flight": interval["in_flight"],
            "p50_ms": latency["p50"], "p99_ms": latency["p99"], "max_ms": latency["max"]}


def stray_processes(pids: set[int]) -> list[int]:
    """Any process we sampled (gunicorn masters and workers) that still runs."""
    strays = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if "gunicorn" in " ".join(psutil.Process(pid).cmdline()):
                strays.append(pid)
    return sorted(strays)


def verdict(args: argparse.Namespace, result: dict) -> tuple[list[dict], dict]:
    """The checks (name, pass, detail), and the figures for the JSON."""
    run: Soak = result["soak"]
    checks, exact, convergence = [], result["exactness"], result["convergence"]
    checks.append({"check": "no order lost or doubled (per customer: 201s = stored = orders_count)",
                   "pass": exact["exact"] and convergence["exact"],
                   "detail": f"{exact['orders_created']} created, {exact['orders_stored']} stored, "
                             f"{exact['orders_counted']} counted; converged "
                             f"{report.fmt(convergence['seconds'], 2)} s after the load"
                             + ("" if exact["exact"] else f"; mismatches {exact['mismatches']}")
                             + ("" if convergence["exact"] else f"; still short {convergence['still_short']}, "
                                                                f"over {convergence['over']}")})
    load = result["load"]
    expected = round(args.rate * run.load_seconds)
    checks.append({"check": "every POST /orders answered 201", "pass": load["sent"] == expected
                   and load["ok"] == expected,
                   "detail": f"{load['ok']} of {expected} scheduled got 201; errors {load['errors'] or 0}"})
    phases = phase_stats(run)
    cut = next((p for p in phases if p["phase"] == "during cut"), None)
    checks.append({"check": "orders kept getting 201 during the broker cut",
                   "pass": cut is not None and cut["ok"] > 0 and cut["errors"] == 0,
                   "detail": "no cut" if cut is None else f"{cut['ok']} 201s in {cut['seconds']:g} s, "
                                                          f"{cut['errors']} errors, p99 "
                                                          f"{report.fmt(cut['latency_ms']['p99'], 1)} ms"})
    recovered = run.outage.get("recovered_after_s")
    checks.append({"check": "broker link and outbox back after the restore", "pass": recovered is not None,
                   "detail": f"recovered {report.fmt(recovered, 1)} s after the restore; outbox backlog peak "
                             f"{report.fmt(run.outage.get('backlog_peak'), 0)}"})
    labelled = {s["label"]: s for s in run.samples if s["label"]}
    warm, settled = labelled["after warm-up"], labelled["settled"]
    processes = compare_processes(warm, labelled.get("end of load", settled), settled)
    checks.append({"check": f"flat: RSS ≤ +{RSS_GROWTH_LIMIT:.0%}, fds ≤ +{FD_SLACK} (besides the PG pool), "
                            "no more connections or channels, no restart",
                   "pass": all(row["pass"] for row in processes),
                   "detail": "; ".join(f"{r['service']} {r['role']} {r['pid']}: {', '.join(r['why'])}"
                                       for r in processes if not r["pass"]) or "every process flat"})
    dead = settled["metrics"]["customer"].get("events_dead_lettered_total", 0)
    checks.append({"check": "no event dead-lettered", "pass": dead == 0, "detail": f"{dead:g} dead-lettered"})
    return checks, {"phases": phases, "processes": processes, "warm_sample_t": warm["t"]}


async def main(args: argparse.Namespace) -> int:
    # SIGTERM cancels us like Ctrl-C does, so the cleanup below still stops everything.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    result: dict = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            await soak(stack, args, result)
    finally:
        run: Soak | None = result.get("soak")
        pids = {row["pid"] for sample in (run.samples if run else []) for row in sample["processes"]}
        strays = stray_processes(pids)
        if strays:
            print(f"soak: gunicorn processes still running after the stop: {strays}", file=sys.stderr)

    checks, figures = verdict(args, result)
    checks.append({"check": "nothing left running after the stop", "pass": not strays,
                   "detail": f"stray pids {strays}" if strays else f"{len(pids)} gunicorn processes all gone"})
    run = result["soak"]
    warm = next(s for s in run.samples if s["label"] == "after warm-up")
    end_load = next(s for s in run.samples if s["label"] == "end of load")
    cpu_text, cpu_figures = cpu_line(run, warm, end_load, sum(p["ok"] for p in figures["phases"]
                                                              if p["phase"] in ("before cut", "during cut",
                                                                                "after cut")))
    logs = log_summary(run.system.log_path)
    last = run.samples[-1]["metrics"]

    print()
    print(f"soak: {args.workers} worker(s) per service, {args.rate:g} orders/s over {args.customers} customers, "
          f"{args.warmup:g} s warm-up + {args.minutes:g} min, broker cut {args.outage:g} s at "
          f"t={run.outage.get('cut_at_s', 0):.0f} s (t from the start of the load)")
    print()
    print(load_table(figures["phases"]))
    print()
    print(f"processes: after warm-up (t={warm['t']:.0f} s) vs the end: RSS the larger of the end of the load and "
          f"settled ({SETTLE_SECONDS:g} s idle after convergence), the rest settled")
    print(process_table(figures["processes"]))
    print()
    print(f"events: published {last['order'].get('events_published_total', 0):g}, consumed "
          f"{last['customer'].get('events_consumed_total', 0):g}, duplicates ignored "
          f"{last['customer'].get('events_duplicate_total', 0):g}, retried "
          f"{last['customer'].get('events_retried_total', 0):g}, dead-lettered "
          f"{last['customer'].get('events_dead_lettered_total', 0):g}; outbox pending at the end "
          f"{report.fmt(last['order'].get('outbox_pending_events'), 0)}")
    print(cpu_text)
    channels_known = any(row.get("broker_channels") is not None for s in run.samples for row in s["processes"])
    if not channels_known:
        print("channels: rabbitmqctl could not list connections here (not root?), so no channel counts")
    print(f"service log {run.system.log_path.relative_to(ROOT)}: lines by level {logs['levels']}")
    for message, count in logs["warnings"].items():
        print(f"  {count:6d} x {message}")
    for line in logs["other_error_lines"]:
        print(f"  other line: {line}")
    print()
    print(render(("check", "", "detail"), [(c["check"], "PASS" if c["pass"] else "FAIL", c["detail"])
                                           for c in checks], "lll"))

    stamp = started.strftime("%Y%m%d-%H%M%S")
    document = {
        "started_at": started.isoformat(), "git_commit": git_commit(), "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "passed": all(c["pass"] for c in checks), "checks": checks,
        "limits": {"rss_growth": RSS_GROWTH_LIMIT, "fd_slack": FD_SLACK, "pg_pool_bound": PG_POOL_BOUND,
                   "settle_s": SETTLE_SECONDS, "recovered_backlog": RECOVERED_BACKLOG},
        "load": result["load"], "phases": figures["phases"], "processes": figures["processes"],
        "convergence": result["convergence"], "exactness": result["exactness"],
        "outage": run.outage, "cpu": cpu_figures, "logs": logs, "samples": run.samples,
        "load_intervals": [interval_summary(run, i) for i in run.load.intervals],
    }
    path = RESULTS_DIR / f"soak-{stamp}.json"
    report.save_json(path, document)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if not document["passed"]:
        print("soak: FAILED: " + " | ".join(c["check"] for c in checks if not c["pass"]), file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of load after the warm-up (default 5)")
    parser.add_argument("--rate", type=float, default=50.0, help="POST /orders per second, open loop (default 50)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")),
                        help="gunicorn workers per service (default $WORKERS or 1)")
    parser.add_argument("--customers", type=int, default=200, help="customers the orders go to (default 200)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of load before the baseline sample "
                                                                   "(default 30)")
    parser.add_argument("--outage", type=float, default=15.0, help="seconds the broker stays cut (default 15)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples (default 10)")
    args = parser.parse_args(argv)
    if min(args.minutes, args.rate, args.workers, args.customers, args.outage, args.sample_every) <= 0:
        parser.error("minutes, rate, workers, customers, outage and sample interval must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.minutes * 60 < args.outage + 20:
        parser.error("--minutes must leave at least 10 s of load on each side of the --outage")
    return args


def cli() -> int:
    if sys.argv[1:2] == ["loadgen"]:  # internal: the load generator process
        return loadgen_main(sys.argv[2:])
    args = parse_args()
    try:
        return asyncio.run(main(args))
    except BenchError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # everything was stopped on the way out
        print("soak: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
