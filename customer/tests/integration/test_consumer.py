"""The order.created consumer, fed raw messages: exactly once, poison to the dead-letter queue."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from aiormq.exceptions import PublishError
from pamqp.commands import Basic

from conftest import broker_connected, broker_lost, dead_letter_details
from customer.app import create_app as create_customer_app
from customer.metrics import EVENTS_CONSUMED, EVENTS_DUPLICATE
from shared.testing.api import create_customer, get_json, order_created_event
from shared.testing.plugin import eventually, unique
from shared.testing.runs import BROKER_USER


async def publish(channel, test_run, body: bytes, routing_key: str = "order.created", headers=None) -> None:
    await channel.basic_publish(
        body,
        exchange=test_run.exchange,
        routing_key=routing_key,
        properties=Basic.Properties(
            delivery_mode=2, content_type="application/json", user_id=BROKER_USER, headers=headers or {}
        ),
    )


async def orders_count(client, customer_id: int) -> int:
    return (await get_json(client, f"/customers/{customer_id}"))["orders_count"]


async def test_an_event_increments_orders_count(customer_client, broker, test_run):
    customer = await create_customer(customer_client)
    await publish(broker, test_run, order_created_event(customer["id"]))

    async def counted():
        assert await orders_count(customer_client, customer["id"]) == 1

    await eventually(counted)


async def test_the_same_event_delivered_twice_counts_once(customer_client, broker, test_run):
    customer, marker = await create_customer(customer_client), await create_customer(customer_client)
    consumed, duplicates = EVENTS_CONSUMED.labels("order.created"), EVENTS_DUPLICATE.labels("order.created")
    consumed_before, duplicates_before = consumed._value.get(), duplicates._value.get()
    event_id = str(uuid.uuid4())
    for _ in range(3):
        await publish(broker, test_run, order_created_event(customer["id"], event_id))
    # A later event for another customer is applied after the duplicates were handled (one queue, in order).
    await publish(broker, test_run, order_created_event(marker["id"]))

    async def marker_counted():
        assert await orders_count(customer_client, marker["id"]) == 1

    await eventually(marker_counted)
    assert await orders_count(customer_client, customer["id"]) == 1
    assert consumed._value.get() - consumed_before == 2  # the first copy and the marker
    # At least: a message the previous test's app applied but had not acked yet may come back here, as a duplicate.
    assert duplicates._value.get() - duplicates_before >= 2


async def test_poison_is_dead_lettered_and_good_messages_still_apply(customer_client, broker, test_run):
    customer, request_id = await create_customer(customer_client), unique("poison-test")
    poison = [
        b"not json at all " + request_id.encode(),
        orjson.dumps({"hello": request_id}),
        order_created_event(2147483000),
    ]
    for body in poison:
        await publish(broker, test_run, body, headers={"x-request-id": request_id})
    for _ in range(3):
        await publish(broker, test_run, order_created_event(customer["id"]))

    async def good_applied():
        assert await orders_count(customer_client, customer["id"]) == 3

    await eventually(good_applied)
    collected = await dead_letter_details(customer_client, 3, lambda d: d["headers"].get("x-request-id") == request_id)
    assert sorted(d["body"].encode() for d in collected) == sorted(poison)
    reasons = [d["error"] for d in collected]
    assert any(r.startswith("invalid event") for r in reasons)
    assert any("does not exist" in r for r in reasons)


async def test_the_consumer_only_hears_order_created(customer_client, broker, test_run):
    customer = await create_customer(customer_client)
    body = orjson.loads(order_created_event(customer["id"]))
    body["event_type"] = "order.status_changed"
    # Mandatory: the broker hands it back unless some queue is bound for it, and the consumer's is not.
    with pytest.raises(PublishError):
        await broker.basic_publish(
            orjson.dumps(body), exchange=test_run.exchange, routing_key="order.status_changed", mandatory=True
        )
    await publish(broker, test_run, order_created_event(customer["id"]))

    async def counted_once():
        assert await orders_count(customer_client, customer["id"]) == 1

    await eventually(counted_once)


async def test_the_consumer_resumes_after_a_broker_cut(aiohttp_client, customer_settings, broker, test_run, tcp_proxy):
    proxy = await tcp_proxy("127.0.0.1", 5672)
    settings = customer_settings.model_copy(update={"amqp_url": proxy.url("amqp://guest:guest@127.0.0.1:{port}/")})
    client = await aiohttp_client(await create_customer_app(settings))
    await broker_connected(client.app)
    customer = await create_customer(client)

    await proxy.cut()

    await broker_lost(client.app)
    for _ in range(3):
        await publish(broker, test_run, order_created_event(customer["id"]))
    assert await orders_count(client, customer["id"]) == 0

    await proxy.restore()

    async def applied():
        assert await orders_count(client, customer["id"]) == 3

    await eventually(applied, timeout=20)


async def test_a_naive_occurred_at_still_applies(customer_client, broker, test_run):
    customer = await create_customer(customer_client)
    body = orjson.loads(order_created_event(customer["id"]))
    body["occurred_at"] = datetime.now(UTC).replace(tzinfo=None).isoformat()  # naive, within the window
    await publish(broker, test_run, orjson.dumps(body))

    async def counted():
        assert await orders_count(customer_client, customer["id"]) == 1

    await eventually(counted)


async def test_the_topology_is_what_clients_expect(customer_client, broker, test_run):
    """Exchange: durable topic; dead-letter queue and main queue: quorum (a cluster node's loss loses
    neither), the main one bound."""
    await broker.exchange_declare(test_run.exchange, exchange_type="topic", durable=True)
    await broker.queue_declare(f"{test_run.queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    declared = await broker.queue_declare(test_run.queue, passive=True)
    assert declared.consumer_count >= 1
