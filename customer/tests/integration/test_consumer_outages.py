"""The consumer rides out its database's outages by itself; only what can never apply is dead-lettered.

Outages go through a TCP proxy between the service and PostgreSQL (the shared server is never touched).
"""

import asyncio
import logging
import time

import asyncpg
import pytest

from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.keys import CONSUMER
from customer.metrics import CONSUMER_BREAKER_OPEN, CONSUMER_BREAKER_OPEN_SECONDS
from customer.settings import CustomerSettings
from customer.tests.integration.test_consumer_at_size import DeadLetters, publish_all
from shared.db import asyncpg_dsn
from shared.testing.api import assert_problem, becomes_ready, create_customer, get_json, order_created_event
from shared.testing.plugin import eventually


async def app_behind_proxy(aiohttp_client, run, tcp_proxy, **overrides):
    proxy = await tcp_proxy("127.0.0.1", 5432)
    url = run.customer_db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    client = await aiohttp_client(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=url, **overrides))
    )
    await broker_connected(client.app)
    return client, proxy


async def count_of(customer_db: str, customer_id: int) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(customer_db))  # straight to the database, not through the proxy
    try:
        return await conn.fetchval("SELECT orders_count FROM customers WHERE id = $1", customer_id)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_a_database_outage_longer_than_every_retry_delay_under_a_stream_of_events_dead_letters_nothing(
    aiohttp_client, scratch_run, tcp_proxy, broker
):
    """The outage outlasts the whole retry schedule and a backlog past the prefetch builds up: a consumer
    that retried through the delays would dead-letter, one that holds off while the breaker is open does not."""
    run = scratch_run(retry_delays=(1, 2))
    outage = 8
    client, proxy = await app_behind_proxy(aiohttp_client, run, tcp_proxy, prefetch=200)
    customer = await create_customer(client)
    sent = 0

    async def stream(seconds: float) -> None:
        nonlocal sent
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await publish_all(broker, run, [order_created_event(customer["id"]) for _ in range(10)])
            sent += 10
            await asyncio.sleep(0.1)  # the stream's pace, not a synchronisation

    await stream(2)
    await proxy.cut()
    streaming = asyncio.create_task(stream(outage))

    async def breaker_open():
        assert CONSUMER_BREAKER_OPEN._value.get() == 1

    await eventually(breaker_open, timeout=10)
    await assert_problem(await client.get("/ready"), 503, field="database")
    await streaming

    async def says_for_how_long():  # updated at each of the breaker's probes, so polled
        assert CONSUMER_BREAKER_OPEN_SECONDS._value.get() >= outage / 2

    await eventually(says_for_how_long, timeout=10)
    await proxy.restore()

    async def all_counted():
        assert await count_of(run.customer_db, customer["id"]) == sent

    await eventually(all_counted, timeout=60, interval=0.2)
    assert CONSUMER_BREAKER_OPEN._value.get() == 0
    await becomes_ready(client)
    dead = DeadLetters(client)
    with pytest.raises(AssertionError):
        await dead.at_least(1)  # none


async def test_database_restarts_in_the_middle_of_batches_lose_and_double_nothing(aiohttp_client, scratch_run, broker):
    """Every connection of the service killed (as a PostgreSQL restart does) while batches apply."""
    run = scratch_run()
    client = await aiohttp_client(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db))
    )
    await broker_connected(client.app)
    customer = await create_customer(client)
    admin = await asyncpg.connect(asyncpg_dsn(run.customer_db))
    try:
        database = run.customer_db.rsplit("/", 1)[-1]
        for _ in range(5):
            await publish_all(broker, run, [order_created_event(customer["id"]) for _ in range(400)])
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )

        async def all_counted():
            assert await count_of(run.customer_db, customer["id"]) == 2000

        await eventually(all_counted, timeout=60, interval=0.2)
    finally:
        await admin.close()
    dead = DeadLetters(client)
    with pytest.raises(AssertionError):
        await dead.at_least(1)


async def test_poison_that_arrives_during_an_outage_is_dead_lettered_with_its_reason_once_the_database_is_back(
    aiohttp_client, scratch_run, tcp_proxy, broker
):
    run = scratch_run()
    client, proxy = await app_behind_proxy(aiohttp_client, run, tcp_proxy)
    customer = await create_customer(client)
    await proxy.cut()
    await publish_all(broker, run, [order_created_event(2_000_000_001), order_created_event(customer["id"])])

    async def breaker_open():
        assert client.app[CONSUMER].breaker.is_open

    await eventually(breaker_open, timeout=10)
    await proxy.restore()
    dead = DeadLetters(client)
    await eventually(lambda: dead.at_least(1), timeout=30)
    assert dead.reasons() == ["customer 2000000001 does not exist"]

    async def the_good_one_counted():
        assert (await get_json(client, f"/customers/{customer['id']}"))["orders_count"] == 1

    await eventually(the_good_one_counted)


async def test_a_message_that_keeps_failing_while_the_database_is_up_is_retried_with_growing_delays(
    aiohttp_client, scratch_run, broker, caplog
):
    """A bug for one customer (a trigger that raises): its event is retried after 1 s, then 2 s, then
    dead-lettered with the error; the other customers' events in the same batches apply meanwhile."""
    run = scratch_run(retry_delays=(1, 2))
    client = await aiohttp_client(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db))
    )
    await broker_connected(client.app)
    broken, fine = await create_customer(client), await create_customer(client)
    conn = await asyncpg.connect(asyncpg_dsn(run.customer_db))
    try:
        await conn.execute(f"""
            CREATE FUNCTION refuse_broken() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'a bug for customer %', NEW.id; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_broken BEFORE UPDATE ON customers
                FOR EACH ROW WHEN (NEW.id = {broken["id"]}) EXECUTE FUNCTION refuse_broken();""")
    finally:
        await conn.close()

    caplog.set_level(logging.WARNING, logger="customer.events.redelivery")
    started = time.monotonic()
    await publish_all(broker, run, [order_created_event(broken["id"]), order_created_event(fine["id"])])
    dead = DeadLetters(client)
    await eventually(lambda: dead.at_least(1), timeout=30)
    elapsed = time.monotonic() - started

    [letter] = dead.messages
    reason = letter["error"]
    assert reason.startswith("failed 3 times:") and f"a bug for customer {broken['id']}" in reason
    assert elapsed >= 3  # waited 1 s, then 2 s, between the attempts
    retries = [r.getMessage() for r in caplog.records if "; retry" in r.getMessage()]
    assert [m.split("; ")[1] for m in retries] == ["retry 1 of 2 in 1 s", "retry 2 of 2 in 2 s"]
    assert (await get_json(client, f"/customers/{fine['id']}"))["orders_count"] == 1
    assert (await get_json(client, f"/customers/{broken['id']}"))["orders_count"] == 0
