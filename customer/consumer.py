"""The `order.created` consumer: deliveries applied in batches, one transaction each, acked after the commit.

The path of a delivery: aiormq hands it to `handle` in a task of its own, which only queues it; one
worker task takes whatever has arrived as one batch, so batches grow with the load and stay small when
idle. Each delivery is read into an event (or refused as `Poison`), the batch's events are applied by
`service.apply_orders_created` in one transaction, and after the commit the batch is settled: what did
not apply goes to `Redelivery` with the exception that says why (customer/redelivery.py), then one
multiple-ack covers the batch.

- applied, or found applied before: acked;
- it can never apply (not from a trusted sender, larger than EVENT_MAX_BYTES, not JSON, wrong schema,
  another event type, an unknown customer, older than the deduplication window or dated in the
  future): dead-lettered at once with its reason;
- it fails while the database is fine (a bug, a statement past its timeout): retried through the retry
  queues, then dead-lettered;
- the database is away (connection refused or lost, a restart, too many connections, the database not
  accepting connections, a deadlock...):
  the breaker (customer/breaker.py) opens. Consumption pauses, the messages in hand go back to the queue,
  the database is probed until it answers, and consumption resumes. Nothing is dead-lettered for an
  outage, however long.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from pydantic import ValidationError

from customer import service
from customer.breaker import Breaker
from customer.metrics import CONSUMER_BATCH_SIZE, EVENT_LAG_SECONDS, EVENTS_CONSUMED, EVENTS_DUPLICATE
from customer.redelivery import DatabaseUnavailable, Poison, Redelivery
from customer.settings import CustomerSettings
from customer.topology import declare_customer_queues
from shared.amqp import broker_user
from shared.db import is_transient_database_error
from shared.events import ORDER_CREATED, OrderEvent
from shared.metrics import BufferedHistogram
from shared.problems import describe
from shared.tracing import consumer_span

log = logging.getLogger(__name__)
_event_lag = BufferedHistogram(EVENT_LAG_SECONDS)

# How far ahead of our clock an event's occurred_at may be: the hosts' clocks differ by a little (NTP
# keeps them within a second or so). An event dated later was made up, or its clock is broken, and it
# would sit at the young end of the deduplication window for longer than its true age allows.
FUTURE_TOLERANCE = timedelta(minutes=5)


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


async def apply_events(events: list[OrderEvent]) -> tuple[dict[UUID, service.Outcome], dict[UUID, Exception]]:
    """Apply the batch in one transaction; if it fails for a reason other than the database being
    away, apply its events one at a time, so one bad event does not hold back the good ones.
    Returns the outcomes and the events that failed on their own; raises DatabaseUnavailable."""
    distinct = list({event.event_id: event for event in events}.values())  # a copy in the batch: once
    if not distinct:
        return {}, {}
    try:
        return await _apply(distinct), {}
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if len(distinct) == 1:
            return {}, {distinct[0].event_id: exc}
    outcomes, failed = {}, {}
    for event in distinct:
        try:
            outcomes.update(await _apply([event]))
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            failed[event.event_id] = exc
    return outcomes, failed


async def _apply(events: list[OrderEvent]) -> dict[UUID, service.Outcome]:
    try:
        return await service.apply_orders_created(events)
    except Exception as exc:
        if is_transient_database_error(exc):
            raise DatabaseUnavailable(describe(exc)) from exc
        raise


def count_outcomes(events: Iterable[OrderEvent], outcomes: dict[UUID, service.Outcome]) -> None:
    counted: set[UUID] = set()
    duplicates = 0
    now = datetime.now(UTC)
    for event in events:
        outcome = outcomes.get(event.event_id)
        if outcome is service.Outcome.APPLIED and event.event_id not in counted:
            counted.add(event.event_id)
            if event.occurred_at.tzinfo is not None:  # a naive timestamp from a foreign producer has no lag
                _event_lag.observe(max(0.0, (now - event.occurred_at).total_seconds()))
        elif outcome is not None and outcome is not service.Outcome.UNKNOWN_CUSTOMER:
            duplicates += 1
    # Once per batch rather than once per event: each update of a multiprocess metric costs a lock
    # and a write into a memory-mapped file.
    _event_lag.flush()
    if duplicates:
        EVENTS_DUPLICATE.labels(ORDER_CREATED).inc(duplicates)
    if counted:
        EVENTS_CONSUMED.labels(ORDER_CREATED).inc(len(counted))
        log.debug("counted %d order(s)", len(counted))


async def give_back(batch: list[DeliveredMessage]) -> None:
    """A batch that could not be settled (the channel failed under it): closing the channel hands
    every unacked delivery back to the broker, and BrokerLink reconnects."""
    log.exception("consumer: could not settle a batch of %d; returning it to the broker", len(batch))
    if batch and not batch[0].channel.is_closed:
        with contextlib.suppress(Exception):
            await batch[0].channel.close()


class OrderCreatedConsumer:
    def __init__(self, settings: CustomerSettings) -> None:
        self.settings = settings
        self.breaker = Breaker()
        self.redelivery = Redelivery(settings)
        self.dedup_window = timedelta(hours=settings.processed_events_retention_hours)
        self._buffer: deque[DeliveredMessage] = deque()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._accepting = True
        self._cancelled = False  # the broker cancelled our consumer: the worker consumes again

    # --- the subscription: on every channel BrokerLink opens ---------------------------------------------

    async def on_channel(self, channel: AbstractChannel) -> None:
        """BrokerLink runs this on every (re)connect."""
        await declare_customer_queues(channel, self.settings)
        await channel.basic_qos(prefetch_count=self.settings.prefetch)
        channel.on_consumer_cancel_callbacks.add(self._cancelled_by_broker)
        self._channel, self._consumer_tag = channel, None
        if self._accepting and not self.breaker.is_open:
            await self.resume()

    async def resume(self) -> None:
        """Start consuming on the current channel (BrokerLink's reconnect does it again on a new one)."""
        assert self._channel is not None
        if self._consumer_tag is not None:
            return  # consuming already
        ok = await self._channel.basic_consume(self.settings.orders_queue, self.handle, no_ack=False)
        self._consumer_tag = ok.consumer_tag

    async def pause(self) -> None:
        """Stop the broker's deliveries (basic.cancel); what it already sent still arrives and is settled."""
        channel, tag, self._consumer_tag = self._channel, self._consumer_tag, None
        if channel is not None and tag is not None and not channel.is_closed:
            with contextlib.suppress(Exception):  # a channel lost meanwhile has stopped consuming anyway
                await channel.basic_cancel(tag)

    def _cancelled_by_broker(self, frame: Basic.Cancel) -> None:
        """The broker ended our consumer (basic.cancel: its queue was deleted, say). aiormq only logs it
        and the channel stays open, so nothing would ever be delivered again: the worker consumes anew.
        (This runs in the channel's frame reader, which must not wait for the broker's answer itself.)"""
        if frame.consumer_tag is not None and frame.consumer_tag == self._consumer_tag:
            log.warning(
                "consumer: the broker cancelled our consumer of %s; consuming again", self.settings.orders_queue
            )
            self._consumer_tag = None
            self._cancelled = True
            self._arrived.set()

    async def _consume_again(self) -> None:
        """Declare the queues again (they may be gone) and consume; on failure close the channel, so
        BrokerLink starts over on a new one."""
        channel = self._channel
        if channel is None or channel.is_closed or not self._accepting or self.breaker.is_open:
            return  # a new channel, the end of the drain or the breaker's close consumes again
        try:
            await declare_customer_queues(channel, self.settings)
            await self.resume()
        except Exception:
            log.exception("consumer: could not consume again; reconnecting")
            with contextlib.suppress(Exception):
                await channel.close()

    # --- the worker: a batch at a time -----------------------------------------------------------------------

    async def handle(self, message: DeliveredMessage) -> None:
        self._buffer.append(message)
        self._arrived.set()

    async def run(self) -> None:
        """The worker: apply what has arrived, a batch at a time."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if self._cancelled:
                self._cancelled = False
                await self._consume_again()
            self._idle.clear()
            try:
                while self._buffer:
                    batch = self._take_batch()
                    try:
                        await self._process(batch)
                    except Exception:
                        await give_back(batch)
            finally:
                self._idle.set()

    def _take_batch(self) -> list[DeliveredMessage]:
        batch: list[DeliveredMessage] = []
        while self._buffer and len(batch) < self.settings.consumer_batch_size:
            message = self._buffer.popleft()
            if message.channel is self._channel and not message.channel.is_closed:
                batch.append(message)  # (a lost channel's deliveries are the broker's again)
        return batch

    async def _process(self, batch: list[DeliveredMessage]) -> None:
        """Read, apply in one transaction, settle: the deliveries that did not apply are handed to
        redelivery with the exception that says why, and the batch is acked after the commit."""
        if not batch:
            return
        CONSUMER_BATCH_SIZE.observe(len(batch))
        events: dict[DeliveredMessage, OrderEvent] = {}
        failures: dict[DeliveredMessage, Exception] = {}
        for message in batch:
            try:
                events[message] = self._read_event(message)
            except Poison as poison:
                failures[message] = poison
        try:
            with consumer_span(
                f"{self.settings.orders_queue} process", [message.header.properties.headers for message in events]
            ):
                outcomes, failed = await apply_events(list(events.values()))
        except DatabaseUnavailable as outage:
            await self._ride_out_outage(outage, batch, failures | dict.fromkeys(events, outage))
            return
        for message, event in events.items():
            if event.event_id in failed:
                failures[message] = failed[event.event_id]
            elif outcomes[event.event_id] is service.Outcome.UNKNOWN_CUSTOMER:
                failures[message] = Poison("unknown_customer", f"customer {event.data.customer_id} does not exist")
        await self._settle(batch, failures)
        count_outcomes(events.values(), outcomes)

    def _read_event(self, message: DeliveredMessage) -> OrderEvent:
        """The event a delivery carries, or Poison. Who sent it and its size are checked before the body
        is parsed: a forged or oversized message costs no parsing."""
        sender = message.header.properties.user_id
        # Our own user: the copies the consumer makes itself (retries, requeues) and replays of dead letters.
        if sender not in self.settings.order_events_publishers and sender != broker_user(message.channel):
            raise Poison("untrusted_sender", f"untrusted sender: user_id {sender!r} is not an order events publisher")
        if len(message.body) > self.settings.event_max_bytes:
            raise Poison(
                "invalid_event",
                f"invalid event: {len(message.body)} bytes, over EVENT_MAX_BYTES ({self.settings.event_max_bytes})",
            )
        return parse_event(message.body, self.dedup_window)

    async def _settle(self, batch: list[DeliveredMessage], failures: dict[DeliveredMessage, Exception]) -> None:
        """Hand the failures to redelivery (each copy confirmed by the broker), then ack the batch in one frame.

        The batch is every delivery up to its last that an earlier batch did not settle, so one
        multiple-ack covers exactly it. A channel lost on the way returns all of it to the broker.
        """
        await self.redelivery.send(failures)
        last = batch[-1]
        assert last.delivery_tag is not None  # a delivery always has one (only basic.get-empty has none)
        await last.channel.basic_ack(last.delivery_tag, multiple=True)

    # --- the database is away ----------------------------------------------------------------------------

    async def _ride_out_outage(
        self, outage: DatabaseUnavailable, batch: list[DeliveredMessage], failures: dict[DeliveredMessage, Exception]
    ) -> None:
        """Open the breaker and pause; settle the batch (its events back to the queue as fresh copies,
        which spend none of the delivery limit); probe the database with capped backoff until it
        answers, setting aside what still arrives; then close the breaker and consume again."""
        self.breaker.open(outage)
        await self.pause()
        await self._settle_or_give_back(batch, failures)
        attempt = 0
        while self._accepting:
            stragglers = self._drain_buffer()  # delivered before the pause took effect
            if stragglers:
                await self._settle_or_give_back(stragglers, dict.fromkeys(stragglers, outage))
            if await self.breaker.database_answers(attempt):
                break
            attempt += 1
        self.breaker.close()
        if self._accepting and self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):  # a lost channel consumes again on its reconnect
                await self.resume()

    async def _settle_or_give_back(
        self, batch: list[DeliveredMessage], failures: dict[DeliveredMessage, Exception]
    ) -> None:
        try:
            await self._settle(batch, failures)
        except Exception:  # the broker is in trouble too: closing the channel returns them
            await give_back(batch)

    def _drain_buffer(self) -> list[DeliveredMessage]:
        messages = []
        while self._buffer:
            messages.extend(self._take_batch())
        return messages

    # --- shutdown --------------------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Stop taking messages and let the ones in hand finish (graceful shutdown)."""
        self._accepting = False
        await self.pause()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._buffer or not self._idle.is_set():
                    self._arrived.set()
                    await self._idle.wait()
                    await asyncio.sleep(0)
