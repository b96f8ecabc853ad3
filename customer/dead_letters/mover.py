"""Dead letters as data: what reaches `customer.orders.dlq` is moved into the `dead_letters` table.

The queue stays the broker-side safety net; the move is exactly-once. Each dead letter is written by
one statement (an upsert, its own transaction) and acked only after that commit: a crash in between
leaves it in the queue, and its redelivery finds its dead-lettering (`occurrence`) in the row's
history already and changes nothing. So a dead letter is in the table or in the queue, never lost and
never twice. While the database is away the mover holds off (capped backoff) and the letters wait in
the queue.

One row per event id. A message without one (not JSON, or no `event_id`) is keyed by its AMQP
`message_id` and its body's hash (`message:<id>:<16 hex digits>`), or, without a message id, by the
hash alone (`body:<sha256>`): a key the same message gives again, so that a redelivery finds its row.
"""

import asyncio
import contextlib
import hashlib
import logging
import uuid
from datetime import UTC, datetime

import orjson
from aiormq.abc import AbstractChannel, DeliveredMessage

from customer.dead_letters import repository
from customer.dead_letters.repository import DeadLetterRecord
from customer.events.redelivery import ATTEMPT_HEADER, KIND_HEADER, OCCURRENCE_HEADER, REASON_HEADER
from customer.metrics import EVENTS_DEAD_LETTERED
from customer.settings import CustomerSettings
from shared.amqp import backoff_delay

log = logging.getLogger(__name__)

MOVE_PREFETCH = 50  # dead letters are rare; a bounded prefetch all the same
# Headers the dead-lettering added (kept in the row's own columns, and not sent again by a replay).
DEAD_LETTERING_HEADERS = frozenset({REASON_HEADER, KIND_HEADER, OCCURRENCE_HEADER, "x-death", "x-delivery-count"})
DEAD_LETTERING_PREFIXES = ("x-first-death-", "x-last-death-")


def _plain(value):
    """An AMQP header value as JSON can hold it."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _event_fields(body: bytes) -> tuple[uuid.UUID | None, str | None, int | None]:
    """What the body says of itself, as far as it can be read (a poison message may say nothing)."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(event, dict):
        return None, None, None
    try:
        event_id = uuid.UUID(str(event.get("event_id")))
    except ValueError:
        event_id = None
    event_type = event.get("event_type") if isinstance(event.get("event_type"), str) else None
    data = event.get("data")
    customer_id = data.get("customer_id") if isinstance(data, dict) else None
    customer_id = customer_id if isinstance(customer_id, int) and abs(customer_id) < 2**63 else None
    return event_id, event_type and event_type[:64], customer_id


def _broker_death(headers: dict, work_queue: str) -> dict:
    """The broker's own dead-lettering from the work queue (the delivery limit), from `x-death`."""
    for death in headers.get("x-death") or []:
        if isinstance(death, dict) and _plain(death.get("queue")) == work_queue:
            return death
    return {}


def record_of(message: DeliveredMessage, settings: CustomerSettings) -> DeadLetterRecord:
    properties = message.header.properties
    headers = dict(properties.headers or {})
    body = bytes(message.body)
    event_id, event_type, customer_id = _event_fields(body)
    digest = hashlib.sha256(body).hexdigest()
    if event_id is not None:
        key = str(event_id)
    elif properties.message_id:  # with the body's hash: a publisher may reuse one message id for several
        key = f"message:{properties.message_id[:150]}:{digest[:16]}"
    else:
        key = f"body:{digest}"
    if KIND_HEADER in headers:  # the consumer dead-lettered it (customer/events/redelivery.py)
        reason, error = str(_plain(headers[KIND_HEADER])), str(_plain(headers.get(REASON_HEADER) or ""))
        attempts = int(str(_plain(headers.get(ATTEMPT_HEADER)) or 0)) + 1 if reason == "retries_exhausted" else 1
        occurrence = str(_plain(headers.get(OCCURRENCE_HEADER) or "")) or f"{key}:{digest}"
    else:  # the broker did: past EVENT_DELIVERY_LIMIT, the consumer crashed on it every time
        death = _broker_death(headers, settings.orders_queue)
        broker_reason = str(_plain(death.get("reason") or headers.get("x-first-death-reason") or "unknown"))
        reason = "delivery_limit" if broker_reason == "delivery_limit" else f"broker_{broker_reason}"[:64]
        attempts = int(str(_plain(headers.get("x-delivery-count")) or settings.delivery_limit)) + 1
        error = f"the broker dead-lettered it ({broker_reason}) after {attempts} deliveries left unsettled"
        occurrence = f"{key}:x-death:{_plain(death.get('time'))}:{_plain(death.get('count'))}"
    kept = {
        k: _plain(v)
        for k, v in headers.items()
        if k not in DEAD_LETTERING_HEADERS and not k.startswith(DEAD_LETTERING_PREFIXES)
    }
    return DeadLetterRecord(
        key=key,
        event_id=event_id,
        event_type=event_type,
        customer_id=customer_id,
        reason=reason,
        error=error[:2000],
        attempts=attempts,
        failed_at=datetime.now(UTC),
        occurrence=occurrence[:300],
        message_id=properties.message_id,
        sender=properties.user_id,
        content_type=properties.content_type,
        headers=kept,
        body=body,
        by_broker=KIND_HEADER not in headers,
    )


class DeadLetterMover:
    """Consumes the dead-letter queue on a channel of its own (its prefetch is not the work queue's)."""

    def __init__(self, settings: CustomerSettings) -> None:
        self.settings = settings
        self._arrived: asyncio.Queue[DeliveredMessage] = asyncio.Queue()

    async def on_channel(self, channel: AbstractChannel) -> None:
        """On every (re)connect, after the consumer declared the queues."""
        side = await channel.connection.channel()
        await side.basic_qos(prefetch_count=MOVE_PREFETCH)
        await side.basic_consume(self.settings.dead_letter_queue, self._arrived.put, no_ack=False)

    async def run(self) -> None:
        """One dead letter at a time: write it, then ack it; hold off while the database is away."""
        attempt = 0
        while True:
            message = await self._arrived.get()
            if message.channel.is_closed or message.delivery_tag is None:
                continue  # the broker has it again, and delivers it on the next channel
            try:
                record = record_of(message, self.settings)
                if await repository.record_dead_letter(record) and record.by_broker:
                    EVENTS_DEAD_LETTERED.labels(record.reason).inc()  # the consumer counts only its own
            except Exception as exc:
                delay = backoff_delay(attempt, base=0.5, cap=30.0)
                attempt += 1
                log.warning("could not record dead letter (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                with contextlib.suppress(Exception):  # a lost channel returns it anyway
                    await message.channel.basic_nack(message.delivery_tag, requeue=True)
                continue
            attempt = 0
            with contextlib.suppress(Exception):  # a lost ack: redelivered, then recognised by its occurrence
                await message.channel.basic_ack(message.delivery_tag)
