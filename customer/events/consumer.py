"""The `order.created` consumer: deliveries applied in batches, one transaction each, acked after the commit.

The path of a delivery: aiormq hands it (subscription.py) to `handle` in a task of its own,
which only queues it; one worker task takes whatever has arrived as one batch, so batches grow with the
load and stay small when idle. Each delivery is read into an event or refused as `Poison`
(incoming.py), the batch's events are applied in one transaction (applying.py), and
after the commit the batch is settled: what did not apply goes to `Redelivery` with the exception that
says why (redelivery.py), then one multiple-ack covers the batch.

- applied, or found applied before: acked;
- it can never apply (not from a trusted sender, larger than EVENT_MAX_BYTES, not JSON, wrong schema,
  another event type, an unknown customer, older than the deduplication window or dated in the
  future): dead-lettered at once with its reason;
- it fails while the database is fine (a bug, a statement past its timeout): retried through the retry
  queues, then dead-lettered;
- the database is away (connection refused or lost, a restart, too many connections, the database not
  accepting connections, a deadlock...):
  the breaker (breaker.py) opens. Consumption pauses, the messages in hand go back to the queue,
  the database is probed until it answers, and consumption resumes. Nothing is dead-lettered for an
  outage, however long.
"""

import asyncio
import contextlib
import logging
from collections import deque
from datetime import timedelta

from aiormq.abc import DeliveredMessage

from customer import service
from customer.events.applying import apply_events, count_outcomes
from customer.events.breaker import Breaker
from customer.events.incoming import read_event
from customer.events.redelivery import DatabaseUnavailable, Poison, Redelivery
from customer.events.subscription import Subscription
from customer.metrics import CONSUMER_BATCH_SIZE
from customer.settings import CustomerSettings
from shared.events import OrderEvent
from shared.tracing import consumer_span

log = logging.getLogger(__name__)


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
        self._accepting = True
        self.subscription = Subscription(settings, self.handle, self._wants_deliveries, self._arrived.set)

    def _wants_deliveries(self) -> bool:
        return self._accepting and not self.breaker.is_open

    # --- the worker: a batch at a time -----------------------------------------------------------------------

    async def handle(self, message: DeliveredMessage) -> None:
        self._buffer.append(message)
        self._arrived.set()

    async def run(self) -> None:
        """The worker: apply what has arrived, a batch at a time."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if self.subscription.cancelled:
                await self.subscription.consume_again()
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
            if self.subscription.holds(message):
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
                events[message] = read_event(message, self.settings, self.dedup_window)
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
        await self.subscription.pause()
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
        await self.subscription.resume_if_open()

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
        await self.subscription.pause()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._buffer or not self._idle.is_set():
                    self._arrived.set()
                    await self._idle.wait()
                    await asyncio.sleep(0)
