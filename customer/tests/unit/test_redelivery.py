"""Where a failed delivery goes, by the exception handed over with it; no broker (a channel that records)."""

from types import SimpleNamespace

from pamqp.commands import Basic
from yarl import URL

from customer.events.redelivery import (
    ATTEMPT_HEADER,
    KIND_HEADER,
    LAST_ERROR_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    DatabaseUnavailable,
    Poison,
    Redelivery,
)
from customer.metrics import EVENTS_DEAD_LETTERED, EVENTS_RETRIED
from customer.settings import CustomerSettings

SETTINGS = CustomerSettings(orders_queue="q", retry_delays=(5, 30))


class RecordingChannel:
    connection = SimpleNamespace(url=URL("amqp://customer_service:secret@broker/"))

    def __init__(self) -> None:
        self.published: list[tuple[str, str, dict]] = []

    async def basic_publish(self, body: bytes, *, exchange: str, routing_key: str, properties: Basic.Properties):
        assert body == b"{}" and properties.delivery_mode == 2 and properties.message_id == "m1"
        assert properties.user_id == "customer_service"  # every copy is the consumer's own: it trusts them
        self.published.append((exchange, routing_key, properties.headers))


class Delivery:
    """What redelivery reads of an aiormq delivery (hashable, as each is a key of the failures)."""

    def __init__(self, channel: RecordingChannel, **headers) -> None:
        properties = Basic.Properties(message_id="m1", content_type="application/json", headers={"x-request-id": "r"})
        properties.headers.update(headers)
        self.body, self.routing_key, self.channel = b"{}", "order.created", channel
        self.header = SimpleNamespace(properties=properties)


def count(counter, label: str) -> float:
    return counter.labels(label)._value.get()


async def test_poison_is_dead_lettered_with_its_reason_and_counted_by_its_kind():
    channel, before = RecordingChannel(), count(EVENTS_DEAD_LETTERED, "unknown_customer")
    await Redelivery(SETTINGS).send({Delivery(channel): Poison("unknown_customer", "customer 7 does not exist")})
    [(exchange, routing_key, headers)] = channel.published
    assert (exchange, routing_key) == ("q.dlx", "q.dlq")
    assert headers[REASON_HEADER] == "customer 7 does not exist" and headers[KIND_HEADER] == "unknown_customer"
    assert headers[ORIGINAL_ROUTING_KEY_HEADER] == "order.created" and headers["x-request-id"] == "r"
    assert count(EVENTS_DEAD_LETTERED, "unknown_customer") == before + 1


async def test_a_database_outage_puts_a_fresh_copy_back_on_the_work_queue():
    channel, before = RecordingChannel(), count(EVENTS_RETRIED, "database_unavailable")
    await Redelivery(SETTINGS).send({Delivery(channel): DatabaseUnavailable("ConnectionRefusedError: no")})
    assert channel.published == [("q.retry", "q", {"x-request-id": "r"})]
    assert count(EVENTS_RETRIED, "database_unavailable") == before + 1


async def test_any_other_failure_climbs_the_retry_ladder_then_is_dead_lettered():
    channel, before = RecordingChannel(), count(EVENTS_RETRIED, "failed")
    redelivery = Redelivery(SETTINGS)
    await redelivery.send({Delivery(channel): ValueError("a bug")})
    await redelivery.send({Delivery(channel, **{ATTEMPT_HEADER: 1}): ValueError("a bug")})
    await redelivery.send({Delivery(channel, **{ATTEMPT_HEADER: 2}): ValueError("a bug")})
    first, second, last = channel.published
    assert first[:2] == ("q.retry", "q.retry.5s") and first[2][ATTEMPT_HEADER] == 1
    assert second[:2] == ("q.retry", "q.retry.30s") and second[2][ATTEMPT_HEADER] == 2
    assert second[2][LAST_ERROR_HEADER] == "ValueError: a bug"
    assert last[:2] == ("q.dlx", "q.dlq") and last[2][REASON_HEADER] == "failed 3 times: ValueError: a bug"
    assert count(EVENTS_RETRIED, "failed") == before + 2
