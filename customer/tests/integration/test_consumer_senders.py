"""Who may send order events: the broker vouches for each message's user_id, the consumer believes only
the order service's users and its own; what else arrives is dead-lettered unread, and so are events
that are too large or dated in the future."""

import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import aiormq
import orjson
import pytest
from aiormq.exceptions import ChannelPreconditionFailed
from pamqp.commands import Basic

from conftest import broker_connected, dead_letter_details, make_settings
from customer.app import create_app as create_customer_app
from customer.metrics import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED
from customer.settings import CustomerSettings
from order.app import create_app as create_order_app
from order.settings import OrderSettings
from shared.testing.api import create_customer, get_json, order_created_event
from shared.testing.plugin import eventually, unique
from shared.testing.runs import AMQP_URL, BROKER_USER


@pytest.fixture
def broker_users(test_run):
    """Factory: a broker user of the test's own that may publish to the run's exchange (and declare it),
    nothing else; its name and AMQP URL. Deleted afterwards."""
    made: list[str] = []

    def make() -> tuple[str, str]:
        name, password = unique("publisher"), uuid.uuid4().hex
        rabbitmqctl("add_user", name, password)
        made.append(name)
        exchange = f"^{re.escape(test_run.exchange)}$"
        rabbitmqctl("set_permissions", "-p", "/", name, exchange, exchange, "^$")
        return name, f"amqp://{name}:{password}@127.0.0.1:5672/"

    yield make
    for name in made:
        rabbitmqctl("delete_user", name)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def publish_as(url: str, test_run, body: bytes, user_id: str | None) -> None:
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        properties = Basic.Properties(delivery_mode=2, content_type="application/json", user_id=user_id)
        await channel.basic_publish(
            body, exchange=test_run.exchange, routing_key="order.created", properties=properties
        )
    finally:
        await connection.close()


async def dead_letter_reasons(client, customer_id: int, expected: int) -> list[str]:
    """The recorded reasons of the customer's dead letters, once there are `expected`."""
    rows = await dead_letter_details(client, expected, lambda d: d["customer_id"] == customer_id)
    return [row["error"] for row in rows]


def counter(metric, label: str) -> float:
    return metric.labels(label)._value.get()


async def orders_count(client, customer_id: int) -> int:
    return (await get_json(client, f"/customers/{customer_id}"))["orders_count"]


async def test_events_from_no_one_or_another_broker_user_are_dead_lettered_as_untrusted(
    customer_client, broker, test_run, broker_users
):
    customer = await create_customer(customer_client)
    mallory, mallory_url = broker_users()
    untrusted_before, consumed_before = (
        counter(EVENTS_DEAD_LETTERED, "untrusted_sender"),
        counter(EVENTS_CONSUMED, "order.created"),
    )

    await broker.basic_publish(
        order_created_event(customer["id"]), exchange=test_run.exchange, routing_key="order.created"
    )
    await publish_as(mallory_url, test_run, order_created_event(customer["id"]), user_id=mallory)

    reasons = await dead_letter_reasons(customer_client, customer["id"], 2)
    assert len(reasons) == 2 and all(reason.startswith("untrusted sender") for reason in reasons), reasons
    assert counter(EVENTS_DEAD_LETTERED, "untrusted_sender") - untrusted_before == 2
    assert counter(EVENTS_CONSUMED, "order.created") == consumed_before
    assert await orders_count(customer_client, customer["id"]) == 0


async def test_the_broker_refuses_a_user_id_that_is_not_the_publishers_own(test_run, broker_users):
    _, mallory_url = broker_users()
    with pytest.raises(ChannelPreconditionFailed):
        await publish_as(mallory_url, test_run, order_created_event(1), user_id="order_service")


async def test_events_from_the_future_or_too_large_are_dead_lettered_unread(customer_client, broker, test_run):
    customer = await create_customer(customer_client)
    future = orjson.loads(order_created_event(customer["id"]))
    future["occurred_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    oversized = orjson.loads(order_created_event(customer["id"]))
    oversized["data"]["product_name"] = "x" * CustomerSettings().event_max_bytes
    invalid_before = counter(EVENTS_DEAD_LETTERED, "invalid_event")

    for body in (future, oversized):
        await publish_as(AMQP_URL, test_run, orjson.dumps(body), user_id=BROKER_USER)

    reasons = sorted(await dead_letter_reasons(customer_client, customer["id"], 2))
    assert "over EVENT_MAX_BYTES" in reasons[0] and "in the future" in reasons[1], reasons
    assert counter(EVENTS_DEAD_LETTERED, "invalid_event") - invalid_before == 2
    assert await orders_count(customer_client, customer["id"]) == 0


async def test_events_the_order_service_publishes_as_a_configured_publisher_are_counted(
    aiohttp_client, test_run, broker_users
):
    """The order service logs in as a user of its own, which the customer service is told to trust;
    the customer service itself stays the suite's user."""
    publisher, publisher_url = broker_users()
    customers = await aiohttp_client(
        await create_customer_app(
            make_settings(
                CustomerSettings, test_run, database_url=test_run.customer_db, order_events_publishers=(publisher,)
            )
        )
    )
    await broker_connected(customers.app)
    server_url = str(customers.make_url(""))
    orders = await aiohttp_client(
        await create_order_app(
            make_settings(
                OrderSettings,
                test_run,
                database_url=test_run.order_db,
                customer_service_url=server_url,
                amqp_url=publisher_url,
            )
        )
    )
    await broker_connected(orders.app)
    customer = await create_customer(customers)

    response = await orders.post(
        "/orders",
        json={"order": {"customer_id": customer["id"], "product_name": "Pen", "quantity": 1, "price": "2.00"}},
    )
    assert response.status == 201, await response.text()

    async def counted():
        assert await orders_count(customers, customer["id"]) == 1

    await eventually(counted, timeout=10)


async def test_a_replay_leaves_untrusted_dead_letters_unless_asked(customer_client, broker, test_run):
    """The replay publishes as the customer service, whose events its consumer believes: it must not
    launder a forged event by the way."""
    customer = await create_customer(customer_client)
    await broker.basic_publish(
        order_created_event(customer["id"]), exchange=test_run.exchange, routing_key="order.created"
    )
    await dead_letter_reasons(customer_client, customer["id"], 1)
    selection = {"filter": {"customer_id": customer["id"]}, "reason": "checked: the old order service"}
    response = await customer_client.post("/ops/dead-letters/replay", json=selection)
    result = await response.json()
    assert len(result["skipped"]) == 1 and not result["done"], result

    response = await customer_client.post("/ops/dead-letters/replay", json={**selection, "untrusted": True})
    assert len((await response.json())["done"]) == 1

    async def counted():
        assert await orders_count(customer_client, customer["id"]) == 1

    await eventually(counted)
