"""What a delivery carries: an `order.created` event, or `Poison` saying why it can never apply."""

from datetime import UTC, datetime, timedelta

from aiormq.abc import DeliveredMessage
from pydantic import ValidationError

from customer.events.redelivery import Poison
from customer.settings import CustomerSettings
from shared.amqp import broker_user
from shared.events import ORDER_CREATED, OrderEvent

# How far ahead of our clock an event's occurred_at may be: the hosts' clocks differ by a little (NTP
# keeps them within a second or so). An event dated later was made up, or its clock is broken, and it
# would sit at the young end of the deduplication window for longer than its true age allows.
FUTURE_TOLERANCE = timedelta(minutes=5)


def read_event(message: DeliveredMessage, settings: CustomerSettings, dedup_window: timedelta) -> OrderEvent:
    """The event a delivery carries, or Poison. Who sent it and its size are checked before the body
    is parsed: a forged or oversized message costs no parsing."""
    sender = message.header.properties.user_id
    # Our own user: the copies the consumer makes itself (retries, requeues) and replays of dead letters.
    if sender not in settings.order_events_publishers and sender != broker_user(message.channel):
        raise Poison("untrusted_sender", f"untrusted sender: user_id {sender!r} is not an order events publisher")
    if len(message.body) > settings.event_max_bytes:
        raise Poison(
            "invalid_event",
            f"invalid event: {len(message.body)} bytes, over EVENT_MAX_BYTES ({settings.event_max_bytes})",
        )
    return parse_event(message.body, dedup_window)


def parse_event(body: bytes, dedup_window: timedelta) -> OrderEvent:
    try:
        event = OrderEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Poison("invalid_event", f"invalid event: {where}: {first['msg']}") from None
    if event.event_type != ORDER_CREATED:
        raise Poison("unexpected_event_type", f"unexpected event type {event.event_type!r}")
    occurred = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if occurred > now + FUTURE_TOLERANCE:
        raise Poison("invalid_event", f"invalid event: occurred_at {occurred.isoformat()} is in the future")
    if occurred < now - dedup_window:
        # Its id may have been purged from processed_events already: applying it could count it twice.
        raise Poison(
            "stale_event",
            f"stale event: occurred {occurred.isoformat()}, before the deduplication "
            f"window of {dedup_window.total_seconds() / 3600:g} h",
        )
    return event
