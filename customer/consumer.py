"""The `order.created` consumer: parse, apply once, ack after commit; poison to the dead-letter queue."""

import asyncio
import logging
from datetime import UTC, datetime

from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from pydantic import ValidationError

from customer import service
from customer.settings import CustomerSettings
from shared.amqp import PERSISTENT, declare_customer_queues
from shared.events import ORDER_CREATED, OrderEvent
from shared.metrics import EVENT_LAG_SECONDS, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, EVENTS_DUPLICATE, EVENTS_RETRIED
from shared.request_id import request_id_var

log = logging.getLogger(__name__)

REASON_HEADER = "x-dead-letter-reason"


class Poison(Exception):
    """A message that can never be applied; its text is the reason recorded on the dead letter."""


def parse_event(body: bytes) -> OrderEvent:
    try:
        event = OrderEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Poison(f"invalid event: {where}: {first['msg']}") from None
    if event.event_type != ORDER_CREATED:
        raise Poison(f"unexpected event type {event.event_type!r}")
    return event


def retry_delay(message: DeliveredMessage) -> float:
    """Back off a little more on each redelivery (quorum queues count them in x-delivery-count)."""
    redeliveries = int((message.header.properties.headers or {}).get("x-delivery-count") or 0)
    return min(2.0, 0.1 * 2**redeliveries)


class OrderCreatedConsumer:
    def __init__(self, settings: CustomerSettings) -> None:
        self.settings = settings
        self.in_flight: set[asyncio.Task] = set()
        self._accepting = True

    async def on_channel(self, channel: AbstractChannel) -> None:
        """BrokerLink runs this on every (re)connect."""
        await declare_customer_queues(channel, self.settings)
        await channel.basic_qos(prefetch_count=self.settings.prefetch)
        await channel.basic_consume(self.settings.orders_queue, self.handle, no_ack=False)

    async def handle(self, message: DeliveredMessage) -> None:
        if not self._accepting:  # shutting down: leave it to the broker to hand to another instance
            await message.channel.basic_reject(message.delivery_tag, requeue=True)
            return
        self.in_flight.add(asyncio.current_task())
        try:
            headers = message.header.properties.headers or {}
            request_id_var.set(str(headers.get("x-request-id") or message.header.properties.message_id or "-"))
            await self._apply(message)
        finally:
            self.in_flight.discard(asyncio.current_task())

    async def _apply(self, message: DeliveredMessage) -> None:
        channel = message.channel
        try:
            event = parse_event(message.body)
            try:
                applied = await service.apply_order_created(event)
            except service.UnknownCustomer as exc:
                raise Poison(str(exc)) from None
        except Poison as exc:
            await self._dead_letter(message, str(exc))
            return
        except Exception:
            log.exception("transient failure applying message %s; requeueing", message.header.properties.message_id)
            EVENTS_RETRIED.labels(ORDER_CREATED).inc()
            await asyncio.sleep(retry_delay(message))
            await channel.basic_nack(message.delivery_tag, requeue=True)
            return
        await channel.basic_ack(message.delivery_tag)
        (EVENTS_CONSUMED if applied else EVENTS_DUPLICATE).labels(ORDER_CREATED).inc()
        if applied:
            if event.occurred_at.tzinfo is not None:  # a naive timestamp from a foreign producer has no lag to tell
                EVENT_LAG_SECONDS.observe(max(0.0, (datetime.now(UTC) - event.occurred_at).total_seconds()))
            log.debug("order %s counted for customer %s", event.data.order_id, event.data.customer_id)

    async def _dead_letter(self, message: DeliveredMessage, reason: str) -> None:
        """Republish to the dead-letter exchange with the reason (reject cannot add one), then ack."""
        log.warning("dead-lettering message %s: %s", message.header.properties.message_id, reason)
        properties = message.header.properties
        headers = {**(properties.headers or {}), REASON_HEADER: reason,
                   "x-original-routing-key": message.routing_key}
        await message.channel.basic_publish(
            message.body,
            exchange=self.settings.dead_letter_exchange,
            routing_key=self.settings.dead_letter_queue,
            properties=Basic.Properties(
                content_type=properties.content_type, message_id=properties.message_id,
                delivery_mode=PERSISTENT, headers=headers,
            ),
        )
        await message.channel.basic_ack(message.delivery_tag)
        EVENTS_DEAD_LETTERED.labels(reason.split(":", 1)[0][:40]).inc()

    async def drain(self, timeout: float) -> None:
        """Stop taking messages and let the ones in hand finish (graceful shutdown)."""
        self._accepting = False
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=timeout)
