"""Where a delivery goes when it did not apply: the exception that says why decides (after FastStream).

- `Poison` (it can never apply): dead-lettered at once, with its reason;
- `DatabaseUnavailable` (the database is away, not the event wrong): a fresh copy back on the work
  queue, which spends none of the queue's delivery limit; the consumer's breaker decides when it is
  taken again;
- anything else (a bug, say): a copy waits in the retry queue of the next of EVENT_RETRY_DELAYS
  (topology.py); when they are used up it is dead-lettered with the last error.

Each copy is a publish the broker confirms, so the consumer may ack the original once `send` returns.
"""

import asyncio
import logging
import uuid
from collections.abc import Mapping

from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from customer.metrics import EVENTS_DEAD_LETTERED, EVENTS_RETRIED
from customer.settings import CustomerSettings
from shared.amqp import PERSISTENT, broker_user
from shared.auth.identity import ACTOR_AMQP_HEADER
from shared.problems import describe
from shared.request_id import REQUEST_ID_AMQP_HEADER, request_id_var

log = logging.getLogger(__name__)

REASON_HEADER = "x-dead-letter-reason"
KIND_HEADER = "x-dead-letter-kind"  # the reason's metric label, for tools to select by
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
ATTEMPT_HEADER = "x-retry-attempt"  # failed attempts so far, on a retry copy
LAST_ERROR_HEADER = "x-last-error"
# One id per dead-lettering: the mover (customer/dead_letters/mover.py) records each one once, however
# often the dead-letter queue delivers it.
OCCURRENCE_HEADER = "x-dead-letter-id"


class Poison(Exception):
    """A message that can never be applied; `kind` is its metric label, the text the recorded reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class DatabaseUnavailable(Exception):
    """The database failed, not the event: the same event applies once the database is back."""


class Redelivery:
    def __init__(self, settings: CustomerSettings) -> None:
        self.settings = settings

    async def send(self, failures: Mapping[DeliveredMessage, Exception]) -> None:
        """Publish a copy of each failed delivery where its exception sends it, all at once; returns
        when the broker has confirmed every copy."""
        dead = {message: exc for message, exc in failures.items() if isinstance(exc, Poison)}
        requeued = [message for message, exc in failures.items() if isinstance(exc, DatabaseUnavailable)]
        retried = {
            message: exc for message, exc in failures.items() if not isinstance(exc, Poison | DatabaseUnavailable)
        }
        await asyncio.gather(
            *[self._dead_letter(message, poison) for message, poison in dead.items()],
            *[self._retry_later(message, exc) for message, exc in retried.items()],
            *[self._copy_to(message, self.settings.orders_queue, {}) for message in requeued],
        )
        if requeued:
            causes = sorted({str(exc) for exc in failures.values() if isinstance(exc, DatabaseUnavailable)})
            log.warning(
                "%d event(s) back on the queue: the database is unavailable (%s)", len(requeued), "; ".join(causes)
            )
        EVENTS_RETRIED.labels("database_unavailable").inc(len(requeued))

    async def _dead_letter(self, message: DeliveredMessage, poison: Poison) -> None:
        """The one place that knows where dead letters go: the dead-letter queue, with their reason."""
        request_id_var.set(_request_id(message))
        log.warning(
            "dead-lettering message %s: %s",
            message.header.properties.message_id,
            poison,
            extra={"actor": _actor(message)},
        )
        await self._publish_copy(
            message,
            self.settings.dead_letter_exchange,
            self.settings.dead_letter_queue,
            {
                REASON_HEADER: str(poison),
                KIND_HEADER: poison.kind,
                ORIGINAL_ROUTING_KEY_HEADER: message.routing_key,
                OCCURRENCE_HEADER: uuid.uuid4().hex,
            },
        )
        EVENTS_DEAD_LETTERED.labels(poison.kind).inc()

    async def _retry_later(self, message: DeliveredMessage, exc: Exception) -> None:
        request_id_var.set(_request_id(message))
        attempt = int(str((message.header.properties.headers or {}).get(ATTEMPT_HEADER) or 0))
        error = describe(exc)[:500]
        delays = self.settings.retry_delays
        if attempt >= len(delays):
            await self._dead_letter(message, Poison("retries_exhausted", f"failed {attempt + 1} times: {error}"))
            return
        log.warning(
            "message %s failed (%s); retry %d of %d in %d s",
            message.header.properties.message_id,
            error,
            attempt + 1,
            len(delays),
            delays[attempt],
            extra={"actor": _actor(message)},
        )
        await self._copy_to(
            message, self.settings.retry_queue(delays[attempt]), {ATTEMPT_HEADER: attempt + 1, LAST_ERROR_HEADER: error}
        )
        EVENTS_RETRIED.labels("failed").inc()

    async def _copy_to(self, message: DeliveredMessage, routing_key: str, extra_headers: dict) -> None:
        """Through the retry exchange: to a retry queue, or (routed by the work queue's name) straight back."""
        await self._publish_copy(message, self.settings.retry_exchange, routing_key, extra_headers)

    @staticmethod
    async def _publish_copy(message: DeliveredMessage, exchange: str, routing_key: str, extra_headers: dict) -> None:
        properties = message.header.properties
        await message.channel.basic_publish(
            message.body,
            exchange=exchange,
            routing_key=routing_key,
            properties=Basic.Properties(
                content_type=properties.content_type,
                message_id=properties.message_id,
                message_type=properties.message_type,
                delivery_mode=PERSISTENT,
                # Ours now: the consumer trusts its own copies, and RabbitMQ refuses any other user_id.
                user_id=broker_user(message.channel),
                headers={**(properties.headers or {}), **extra_headers},
            ),
        )


def _request_id(message: DeliveredMessage) -> str:
    headers = message.header.properties.headers or {}
    return str(headers.get(REQUEST_ID_AMQP_HEADER) or message.header.properties.message_id or "-")


def _actor(message: DeliveredMessage) -> str | None:
    """Who caused the event (the `sub` of the order service's caller); None with auth off."""
    actor = (message.header.properties.headers or {}).get(ACTOR_AMQP_HEADER)
    return str(actor) if actor is not None else None
