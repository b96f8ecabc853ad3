"""Publishing outbox rows (pipelined, persistent, each confirmed by the broker) and settling them after.

A row leaves the outbox only once the broker confirmed it, so a crash in between publishes it twice at
worst, and the consumer dedupes by event id.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

from aiormq.abc import AbstractChannel
from aiormq.exceptions import PublishError
from pamqp.commands import Basic
from tortoise.backends.base.client import BaseDBAsyncClient

from order.events import OutboxRow
from order.metrics import EVENTS_PUBLISHED
from order.outbox import store
from shared.amqp import PERSISTENT, BrokerLink, broker_user
from shared.auth.identity import ACTOR_AMQP_HEADER
from shared.events import ORDER_CREATED
from shared.request_id import REQUEST_ID_AMQP_HEADER, request_id_var
from shared.tracing import inject_headers, producer_span

log = logging.getLogger(__name__)

BLOCKED_POLL = 0.1  # how often a batch waiting for confirms looks whether the broker blocked us


class BrokerBlocked(Exception):
    """The broker stopped reading our publishes (connection.blocked: a memory or disk alarm)."""


class ConfirmsTimedOut(Exception):
    """The broker took the publishes but did not confirm them in time."""


class EventPublisher:
    def __init__(self, link: BrokerLink, exchange: str, confirm_timeout: float) -> None:
        self.link = link
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout

    async def publish(self, channel: AbstractChannel, rows: Sequence[OutboxRow]) -> list[bool]:
        """Publish every row; for each, True once the broker confirmed it, False if it refused it.

        Pipelined: every publish is on the wire before the first confirm is awaited. Gives up (raises: the
        caller gives the rows back to the outbox) when the broker blocks the connection or the confirms
        take longer than `confirm_timeout`.
        """
        loop = asyncio.get_running_loop()
        publishes = [loop.create_task(self._publish(channel, row), name="outbox publish") for row in rows]
        # One future for the lot, done when every publish is: asyncio.wait on the publishes themselves
        # goes over each of them (and type-checks each) on every call.
        everything = asyncio.gather(*publishes, return_exceptions=True)
        try:
            async with asyncio.timeout(self.confirm_timeout):
                while not everything.done():
                    await asyncio.wait((everything,), timeout=BLOCKED_POLL)
                    if not everything.done() and self.link.is_blocked:
                        raise BrokerBlocked("the broker blocked the connection (memory or disk alarm)")
        except BaseException as exc:
            for publish in publishes:
                publish.cancel()
            await asyncio.gather(*publishes, return_exceptions=True)
            if isinstance(exc, TimeoutError):
                await self.link.reset("publisher confirms timed out")
                raise ConfirmsTimedOut(f"no confirm within {self.confirm_timeout:g} s") from None
            raise
        try:
            return [publish.result() for publish in publishes]
        except Exception:
            await self.link.reset("publish failed")
            raise

    async def _publish(self, channel: AbstractChannel, row: OutboxRow) -> bool:
        request_id_var.set(row.request_id)
        # A producer span in the trace of the request that wrote the row, however long ago.
        with producer_span(self.exchange, row.event_type, str(row.event_id), row.trace_context):
            try:
                confirmation = await self._send(channel, row)
            except PublishError:  # mandatory and no queue bound yet: keep it until the consumer's queue exists
                log.warning("outbox relay: no queue takes %s yet; it stays pending", row.event_type)
                return False
        return isinstance(confirmation, Basic.Ack)

    def _send(self, channel: AbstractChannel, row: OutboxRow):
        # wait=False: don't hold the channel's lock until the frames are written (one loop turn per
        # message, serialising the batch); the broker's confirm is what makes it safe.
        return channel.basic_publish(
            row.payload.encode(),
            exchange=self.exchange,
            routing_key=row.event_type,
            # order.created must reach the customer service's queue; other events are for whoever listens.
            mandatory=row.event_type == ORDER_CREATED,
            properties=Basic.Properties(
                content_type="application/json",
                delivery_mode=PERSISTENT,
                message_id=str(row.event_id),
                message_type=row.event_type,
                user_id=broker_user(channel),  # the broker vouches for it: how consumers know the sender
                headers=inject_headers(event_headers(row)),
            ),
            wait=False,  # type: ignore[call-arg]  # aiormq's Channel takes it; its abstract base does not say so
        )


def event_headers(row: OutboxRow) -> dict[str, str]:
    """The request that caused the event, and who made it (no actor header with AUTH_MODE=off)."""
    headers = {REQUEST_ID_AMQP_HEADER: row.request_id}
    if row.actor is not None:
        headers[ACTOR_AMQP_HEADER] = row.actor
    return headers


async def settle(conn: BaseDBAsyncClient, rows: list[OutboxRow], confirmed: list[bool]) -> None:
    """Delete what the broker confirmed; what it refused stays pending, for any relay's claim."""
    published = [row for row, ok in zip(rows, confirmed, strict=True) if ok]
    refused = [row.event_id for row, ok in zip(rows, confirmed, strict=True) if not ok]
    await store.delete_events(conn, [row.event_id for row in published])
    if refused:
        log.warning("outbox relay: broker refused %d event(s); they stay pending", len(refused))
        await store.count_refusal(conn, refused)
    for event_type, count in Counter(row.event_type for row in published).items():
        EVENTS_PUBLISHED.labels(event_type).inc(count)  # once per type and batch, not per event
