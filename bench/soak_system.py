"""The system under soak and what the soak samples of it.

Our services as bench/run.py starts them, but reaching RabbitMQ through a TCP proxy the soak runs (the
broker it can cut); per gunicorn process its RSS, descriptors and TCP connections (psutil), the channels
RabbitMQ holds for it (rabbitmqctl, when it works here), and each service's /ready and event figures.
"""

import asyncio
import contextlib
import subprocess
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families
from systems import HOST, Ours, processes_of

from shared.testing.proxy import TcpProxy

PROXY_PORT = 3302  # below the ephemeral range, so nothing else takes it while the "broker" is down
PG_PORT = 5432
RABBITMQCTL_TIMEOUT = 15.0
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2)
EVENT_METRICS = (
    "outbox_pending_events",
    "events_published_total",
    "events_consumed_total",
    "events_duplicate_total",
    "events_retried_total",
    "events_dead_lettered_total",
)


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
        self.order_amqp_url = amqp_url  # the relay too: run.sh gives the order service ORDER_AMQP_URL first

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
        "service": service,
        "role": role,
        "pid": process.pid,
        "rss_mb": rss,
        "fds": fds,
        "threads": threads,
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
            for role, process in processes_of(master):
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
