"""What a chaos run owns: its RabbitMQ node, its PostgreSQL instance, the proxies, both services.

Nothing here touches the machine's own servers: the node and the instance are started on free ports in
a temporary folder, so the nemesis may stop, kill and reconfigure them freely. Each service reaches its
database through a TCP proxy (a cut at the network), and the order service reaches the customer service
through one that can also delay (slower than its timeout) or cut (a partition), and the broker
through one that can freeze (publisher confirms that stall).
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiormq
import asyncpg

from shared.db import asyncpg_dsn
from shared.testing import postgres, rabbitmq
from shared.testing.postgres import Server
from shared.testing.processes import ROOT, Services, free_port, gunicorn_workers
from shared.testing.proxy import TcpProxy
from shared.testing.rabbitmq import Node

EXCHANGE = "orders"
ORDERS_QUEUE = "customer.orders"
STATUS_TAP = "chaos.status_changed"  # every order.status_changed the relay publishes, kept for the checker
DATABASES = {"customer": "customers", "order": "orders"}
CONFIRM_TIMEOUT = 3.0  # OUTBOX_CONFIRM_TIMEOUT of the run's order service
STATEMENT_TIMEOUT = 3.0  # DATABASE_STATEMENT_TIMEOUT of both services
MAX_CONNECTIONS = 200  # four workers' pools of ten, their relays' and probes' connections, with room to spare


class DelayProxy(TcpProxy):
    """A TcpProxy that can hold every chunk for `delay` seconds: a dependency slower than its timeout."""

    delay = 0.0

    async def _gate(self, writer: asyncio.StreamWriter) -> None:
        await super()._gate(writer)
        if self.delay:
            await asyncio.sleep(self.delay)


def unavailable() -> str | None:
    """Why a chaos run cannot start here, or None."""
    return rabbitmq.available() or postgres.available()


def migrate(service: str, url: str) -> None:
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", f"{service}.manage", "migrate"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{service}.manage migrate: {done.stderr[-2000:]}")


@dataclass
class System:
    folder: Path
    pg: Server
    node: Node
    services: Services
    db_proxies: dict[str, TcpProxy]  # by service
    customer_link: DelayProxy  # the order service's way to the customer service
    broker_link: TcpProxy  # the order service's way to the broker (the relay's publishes and confirms)

    def database_url(self, service: str) -> str:
        """Straight to the instance, past the proxy: what the nemesis and the checker use."""
        return self.pg.url(DATABASES[service])

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.pg.url("postgres")), timeout=10)

    async def query(self, service: str, sql: str, *args) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url(service)), timeout=10)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    def workers(self, service: str) -> list[int]:
        return gunicorn_workers(self.services, service)

    async def ctl(self, *args: str) -> str:
        return await asyncio.to_thread(self.node.ctl, *args)

    async def queues(self) -> dict[str, tuple[int, int]]:
        """Each queue of the node: (ready, unacknowledged) messages."""
        rows = json.loads(
            await self.ctl("list_queues", "--formatter", "json", "name", "messages_ready", "messages_unacknowledged")
        )
        return {row["name"]: (row["messages_ready"], row["messages_unacknowledged"]) for row in rows}


async def declare_status_tap(amqp_url: str) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        await channel.queue_declare(STATUS_TAP, durable=True)
        await channel.queue_bind(STATUS_TAP, EXCHANGE, routing_key="order.status_changed")
    finally:
        await connection.close()


async def drain_status_tap(amqp_url: str) -> list[aiormq.abc.DeliveredMessage]:
    connection = await aiormq.connect(amqp_url)
    messages = []
    try:
        channel = await connection.channel()
        while (message := await channel.basic_get(STATUS_TAP, no_ack=True)).delivery_tag is not None:
            messages.append(message)
    finally:
        await connection.close()
    return messages


def start_infrastructure(stack: contextlib.AsyncExitStack, folder: Path) -> tuple[Server, Node]:
    """The instance and the node, started side by side (each takes seconds); their stops on `stack`."""
    node = Node(f"chaos{uuid.uuid4().hex[:6]}@localhost", folder / "rabbit", free_port(), free_port())
    node.write_config()
    stack.callback(node.stop_quietly)
    node.launch()
    pg = stack.enter_context(postgres.server(max_connections=MAX_CONNECTIONS))
    node.wait_up()
    return pg, node


async def start_system(stack: contextlib.AsyncExitStack, folder: Path, workers: int = 2) -> System:
    """Everything up and ready; each stop pushed on `stack` (run in reverse: services, proxies, servers)."""
    os.chmod(folder, 0o755)  # the servers' users walk into their folders
    pg, node = await asyncio.to_thread(start_infrastructure, stack, folder)
    await asyncio.gather(*(asyncio.to_thread(migrate, service, pg.url(db)) for service, db in DATABASES.items()))
    await declare_status_tap(node.url)
    db_proxies = {service: await TcpProxy("127.0.0.1", pg.port).start() for service in DATABASES}
    services = Services(env={}, log_path=folder / "services.log")
    customer_link = await DelayProxy("127.0.0.1", services.customer_port).start()
    broker_link = await TcpProxy("127.0.0.1", node.amqp_port).start()
    for proxy in [*db_proxies.values(), customer_link, broker_link]:
        stack.push_async_callback(proxy.close)
    services.env = {
        "WORKERS": str(workers),
        "AMQP_URL": node.url,
        "AUTH_MODE": "off",
        "ORDER_EVENTS_PUBLISHERS": "guest",
        "CUSTOMER_SERVICE_URL": f"http://127.0.0.1:{customer_link.port}",
        "ORDER_AMQP_URL": broker_link.url("amqp://guest:guest@127.0.0.1:{port}/"),
        # Shorter than the defaults, so a fault of a few seconds outlasts them: a stalled confirm gives up,
        # a statement held up by a lock times out.
        "OUTBOX_CONFIRM_TIMEOUT": str(CONFIRM_TIMEOUT),
        "DATABASE_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT),
        **{
            f"{service.upper()}_DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{DATABASES[service]}"
            for service, proxy in db_proxies.items()
        },
    }
    stack.push_async_callback(services.stop)
    await services.start(timeout=60)
    return System(folder, pg, node, services, db_proxies, customer_link, broker_link)
