"""The shared servers a test run uses, and each run's own names on them: its databases (migrated with
the services' own CLI) and its broker names, removed at the end and checked gone."""

import contextlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiormq
import asyncpg
from pamqp.commands import Basic

from shared.db import asyncpg_dsn, database_name, drop_database, with_database

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# The user the suite's connections log in as, the apps' too: the `user_id` a test's event must carry to
# be trusted by the consumer under test (as the consumer's own user).
BROKER_USER = urlsplit(AMQP_URL).username or "guest"


async def publish_order_created(channel, exchange: str, body: bytes, **properties) -> None:
    """`body` as `order.created` on `exchange`, sent as BROKER_USER (so the consumer trusts it); `properties`
    add to the message's AMQP properties."""
    await channel.basic_publish(
        body,
        exchange=exchange,
        routing_key="order.created",
        properties=Basic.Properties(user_id=BROKER_USER, **properties),
    )


def migrate(service: str, env_var: str, url: str) -> None:
    """Create and migrate a database with the service's own CLI, as `make run` does."""
    done = subprocess.run(
        [sys.executable, "-m", f"{service}.manage", "migrate"],
        env={**os.environ, env_var: url},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{service}.manage migrate exited {done.returncode}: {done.stderr[-2000:]}"


@dataclass(frozen=True)
class TestRun:
    id: str
    customer_db: str
    order_db: str
    exchange: str
    queue: str
    retry_delays: tuple[int, ...] = (5, 30, 120, 300)  # the default: the consumer declares a queue for each


def new_run(runs: list[TestRun], retry_delays: tuple[int, ...] = TestRun.retry_delays) -> TestRun:
    """A run with migrated databases, in `runs` before anything is made: a migrate that fails leaves
    nothing the end of the session does not remove."""
    run_id = uuid.uuid4().hex[:8]
    run = TestRun(
        id=run_id,
        customer_db=with_database(SERVER_URL, f"customers_test_{run_id}"),
        order_db=with_database(SERVER_URL, f"orders_test_{run_id}"),
        exchange=f"orders.test.{run_id}",
        queue=f"customer.orders.test.{run_id}",
        retry_delays=retry_delays,
    )
    runs.append(run)
    migrate("customer", "CUSTOMER_DATABASE_URL", run.customer_db)
    migrate("order", "ORDER_DATABASE_URL", run.order_db)
    return run


async def bulk_connection(url: str) -> asyncpg.Connection:
    """A connection for a test's bulk set-up (a million rows made in SQL): the database's statement timeout
    bounds the services' statements, not a fixture's."""
    return await asyncpg.connect(asyncpg_dsn(url), server_settings={"statement_timeout": "0"})


@contextlib.asynccontextmanager
async def aiormq_channel():
    """A channel on the shared broker, closed afterwards."""
    connection = await aiormq.connect(AMQP_URL)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


def broker_names(run: TestRun) -> tuple[list[str], list[str]]:
    """(queues, exchanges) the services declare for a run: the consumer's queue, its dead-letter and
    retry queues and their exchanges, and the events exchange."""
    queues = [run.queue, f"{run.queue}.dlq", *(f"{run.queue}.retry.{d}s" for d in run.retry_delays)]
    return queues, [run.exchange, f"{run.queue}.dlx", f"{run.queue}.retry"]


async def remove_runs(runs: list[TestRun]) -> None:
    for run in runs:
        await drop_run_databases(run)
    async with aiormq_channel() as channel:
        for run in runs:
            queues, exchanges = broker_names(run)
            for queue in queues:
                await channel.queue_delete(queue)
            for exchange in exchanges:
                await channel.exchange_delete(exchange)
    left = [name for run in runs for name in await left_on_the_servers(run)]
    assert not left, f"the test run left these on the shared servers: {left}"


async def drop_run_databases(run: TestRun) -> None:
    for url in (run.customer_db, run.order_db):
        await drop_database(url)


async def left_on_the_servers(run: TestRun) -> list[str]:
    """The run's databases, queues and exchanges that still exist (a passive declare of a missing name
    closes its channel, so one channel each)."""
    conn = await asyncpg.connect(asyncpg_dsn(SERVER_URL), timeout=5)
    try:
        names = [database_name(url) for url in (run.customer_db, run.order_db)]
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
        left = [f"database {row['datname']}" for row in rows]
    finally:
        await conn.close()
    connection = await aiormq.connect(AMQP_URL)
    try:
        queues, exchanges = broker_names(run)
        for kind, name in [*(("queue", q) for q in queues), *(("exchange", e) for e in exchanges)]:
            channel = await connection.channel()
            declare = channel.queue_declare if kind == "queue" else channel.exchange_declare
            with contextlib.suppress(aiormq.exceptions.ChannelNotFoundEntity):
                await declare(name, passive=True)
                left.append(f"{kind} {name}")
                await channel.close()
    finally:
        await connection.close()
    return left
