"""A customer database that refuses connections at the server is an outage for the consumer, not a bug.

`ALTER DATABASE … ALLOW_CONNECTIONS false` and its sessions terminated is what a restart, a failover or
a maintenance window looks like from a client: every new connection gets SQLSTATE 55000 ("database … is
not currently accepting connections"). The database is the test run's own (scratch_run creates it on
the shared server and drops it after): altering it reconfigures nothing but that database, and only its
own sessions are terminated. The shared server's settings and other databases are never touched.
"""

import logging

import asyncpg

from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.keys import CONSUMER
from customer.metrics import EVENTS_RETRIED
from customer.settings import CustomerSettings
from customer.tests.integration.test_consumer_at_size import DeadLetters, publish_all
from customer.tests.integration.test_consumer_outages import count_of
from shared.db import asyncpg_dsn, database_name, with_database
from shared.testing.api import create_customer, order_created_event
from shared.testing.plugin import eventually


async def refuse_connections(customer_db: str, refuse: bool) -> None:
    """The run's own database refuses (or takes again) new connections; refusing also ends its sessions."""
    name = database_name(customer_db)
    admin = await asyncpg.connect(asyncpg_dsn(with_database(customer_db, "postgres")))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')
        if refuse:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


def retried(cause: str) -> float:
    return EVENTS_RETRIED.labels(cause)._value.get()


async def test_a_database_refusing_connections_pauses_the_consumer_instead_of_retrying_events(
    aiohttp_client, scratch_run, broker, caplog
):
    run = scratch_run(retry_delays=(60,))  # a retried event would come back only after a minute: too late
    client = await aiohttp_client(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db))
    )
    await broker_connected(client.app)
    customer = await create_customer(client)
    caplog.set_level(logging.INFO, logger="customer")
    failed_before = retried("failed")
    await refuse_connections(run.customer_db, True)
    try:
        await publish_all(broker, run, [order_created_event(customer["id"]) for _ in range(40)])

        async def breaker_open():
            assert client.app[CONSUMER].breaker.is_open

        await eventually(breaker_open, timeout=15)

        async def refusal_named():  # by the requeue, or by a probe of the breaker's
            assert any("[55000]" in r.getMessage() for r in caplog.records if r.name.startswith("customer."))

        await eventually(refusal_named, timeout=20)
    finally:
        await refuse_connections(run.customer_db, False)

    async def all_counted():
        assert await count_of(run.customer_db, customer["id"]) == 40

    await eventually(all_counted, timeout=30, interval=0.2)
    assert retried("failed") == failed_before, "an event went to the retry ladder for a database outage"
    requeued = [
        r.getMessage() for r in caplog.records if "back on the queue: the database is unavailable (" in r.getMessage()
    ]
    assert requeued, "no log line says why the events went back on the queue"
    assert await DeadLetters(client).at_least(0) == [], "an event was dead-lettered for a database outage"
