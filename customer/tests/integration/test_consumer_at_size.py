"""Batched consumption, the deduplication window and its purge, on the real database and broker."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from pamqp.commands import Basic

import shared.housekeeping
from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.housekeeping import purge_processed_events
from customer.keys import CONSUMER
from customer.metrics import CONSUMER_BATCH_SIZE
from customer.models import ProcessedEvent
from customer.settings import CustomerSettings
from shared.db import use_app_orm
from shared.housekeeping import lock_key
from shared.testing.api import create_customer, get_json, order_created_event
from shared.testing.plugin import eventually
from shared.testing.runs import BROKER_USER, bulk_connection


async def publish_all(channel, run, bodies: list[bytes]) -> None:
    properties = Basic.Properties(delivery_mode=2, content_type="application/json", user_id=BROKER_USER)
    for start in range(0, len(bodies), 200):  # pipelined, confirmed
        await asyncio.gather(
            *(
                channel.basic_publish(body, exchange=run.exchange, routing_key="order.created", properties=properties)
                for body in bodies[start : start + 200]
            )
        )


class DeadLetters:
    """The run's dead letters, as the service moved them into its table (read through /ops/dead-letters)."""

    def __init__(self, client) -> None:
        self.client, self.messages = client, []

    async def at_least(self, n: int) -> list:
        response = await self.client.get("/ops/dead-letters", params={"limit": "200"})
        assert response.status == 200, await response.text()
        self.messages = (await response.json())["items"]
        assert len(self.messages) >= n, [m["error"][:80] for m in self.messages]
        return self.messages

    def reasons(self) -> list[str]:
        return sorted(m["error"] for m in self.messages)


async def customer_app(aiohttp_client, run, **overrides):
    client = await aiohttp_client(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db, **overrides))
    )
    await broker_connected(client.app)
    return client


def _batches_observed() -> tuple[float, float]:
    samples = {s.name: s.value for metric in CONSUMER_BATCH_SIZE.collect() for s in metric.samples}
    return samples["consumer_batch_size_count"], samples["consumer_batch_size_sum"]


async def test_a_backlog_applies_in_batches_each_event_once_with_copies_and_poison_in_the_middle(
    aiohttp_client, scratch_run, broker
):
    run = scratch_run()
    client = await customer_app(aiohttp_client, run)
    customers = [(await create_customer(client))["id"] for _ in range(5)]
    subscription = client.app[CONSUMER].subscription
    await subscription.pause()  # the queue fills first: the consumer then meets one backlog and takes it in batches
    batches_before, taken_before = _batches_observed()

    events = [order_created_event(customers[i % 5], str(uuid.uuid4())) for i in range(400)]
    copies = events[:50]  # the same events again, inside the same backlog
    poison = [b"not json", order_created_event(2_000_000_000), order_created_event(customers[0])[:-5]]
    await publish_all(broker, run, events[:200] + poison + copies + events[200:] + copies)
    await subscription.resume()

    async def all_counted():
        counts = [(await get_json(client, f"/customers/{cid}"))["orders_count"] for cid in customers]
        assert counts == [80] * 5

    await eventually(all_counted, timeout=30)
    dead = DeadLetters(client)
    await eventually(lambda: dead.at_least(3))
    assert [reason.split(":")[0] for reason in dead.reasons()] == [
        "customer 2000000000 does not exist",
        "invalid event",
        "invalid event",
    ]
    use_app_orm(client.app)
    assert await ProcessedEvent.all().count() == 400
    batches, taken = _batches_observed()
    assert taken - taken_before == 503 and batches - batches_before < 503 / 10  # batches, not one by one


async def test_an_event_older_than_the_deduplication_window_is_dead_lettered_not_counted(
    aiohttp_client, scratch_run, broker
):
    run = scratch_run()
    client = await customer_app(aiohttp_client, run, processed_events_retention_hours=1)
    customer = await create_customer(client)
    old = orjson.loads(order_created_event(customer["id"]))
    old["occurred_at"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    await publish_all(broker, run, [orjson.dumps(old), order_created_event(customer["id"])])

    dead = DeadLetters(client)
    await eventually(lambda: dead.at_least(1))
    assert dead.reasons()[0].startswith("stale event")

    async def only_the_fresh_one_counted():
        assert (await get_json(client, f"/customers/{customer['id']}"))["orders_count"] == 1

    await eventually(only_the_fresh_one_counted)


async def test_the_purge_deletes_only_ids_past_the_window_in_batches_one_instance_at_a_time(
    aiohttp_client, scratch_run, monkeypatch
):
    run = scratch_run()
    client = await customer_app(aiohttp_client, run, processed_events_retention_hours=24)
    conn = await bulk_connection(run.customer_db)
    try:
        await conn.execute("""INSERT INTO processed_events (event_id, event_type, processed_at)
                              SELECT gen_random_uuid(), 'order.created', now() - interval '25 hours'
                              FROM generate_series(1, 12000)""")
        await conn.execute("""INSERT INTO processed_events (event_id, event_type, processed_at)
                              SELECT gen_random_uuid(), 'order.created', now() - interval '23 hours'
                              FROM generate_series(1, 300)""")
        settings = client.app[CONSUMER].settings
        use_app_orm(client.app)
        # Another instance is purging (it holds the lock): this one skips its turn, deleting nothing.
        async with conn.transaction():
            assert await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key("processed_events"))
            assert await purge_processed_events(settings) == 0
        assert await conn.fetchval("SELECT count(*) FROM processed_events") == 12300

        # Free again: all that is past the window goes, a short transaction per batch, nothing younger.
        transactions = []
        real_transaction = shared.housekeeping.transaction
        monkeypatch.setattr(
            shared.housekeeping, "transaction", lambda name: transactions.append(name) or real_transaction(name)
        )
        assert await purge_processed_events(settings) == 12000
        assert len(transactions) == 3  # 5,000 + 5,000 + 2,000
        assert await conn.fetchval("SELECT count(*) FROM processed_events") == 300
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM processed_events WHERE processed_at < now() - interval '24 hours'"
            )
            == 0
        )
    finally:
        await conn.close()
