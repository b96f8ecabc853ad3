"""The `order.created` consumer: deliveries applied in batches, one transaction each, acked after the commit.

What happens to a message, by what goes wrong:

- nothing: applied (or found applied before) and acked with its batch;
- it can never apply (not JSON, wrong schema, another event type, an unknown customer, older than the
  deduplication window): dead-lettered at once with its reason;
- the database is away (connection refused or lost, a restart, a statement timeout, a deadlock...):
  the breaker opens. Consumption pauses, the messages in hand go back to the queue as fresh copies (a
  requeue that spends none of the delivery limit), the database is probed with capped backoff and
  jitter, and consumption resumes when it answers. Nothing is dead-lettered, however long it takes;
- it fails while the database is fine (a bug, say): retried after each of EVENT_RETRY_DELAYS through
  the retry queues (customer/topology.py), then dead-lettered with the last error.

aiormq hands each delivery to `handle` in a task of its own; `handle` only queues it, and one worker
task applies whatever has arrived as one batch, so batches grow with the load and stay small when idle.
"""

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from pydantic import ValidationError

from customer import repository, service
from customer.metrics import (
    CONSUMER_BATCH_SIZE,
    CONSUMER_BREAKER_OPEN,
    CONSUMER_BREAKER_OPEN_SECONDS,
    EVENT_LAG_SECONDS,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_RETRIED,
)
from customer.settings import CustomerSettings
from customer.topology import declare_customer_queues
from shared.amqp import PERSISTENT, backoff_delay
from shared.auth import ACTOR_AMQP_HEADER
from shared.db import is_transient_database_error
from shared.events import ORDER_CREATED, OrderEvent
from shared.metrics import BufferedHistogram
from shared.request_id import REQUEST_ID_AMQP_HEADER, request_id_var
from shared.tracing import consumer_span

log = logging.getLogger(__name__)
_event_lag = BufferedHistogram(EVENT_LAG_SECONDS)

REASON_HEADER = "x-dead-letter-reason"
ATTEMPT_HEADER = "x-retry-attempt"  # failed attempts so far, on a retry copy
PROBE_TIMEOUT = 2.0
PROBE_BACKOFF_CAP = 10.0


class Poison(Exception):
    """A message that can never be applied; `kind` is its metric label, the text the recorded reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


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
    if occurred < datetime.now(UTC) - dedup_window:
        # Its id may have been purged from processed_events already: applying it could count it twice.
        raise Poison(
            "stale_event",
            f"stale event: occurred {occurred.isoformat()}, before the deduplication "
            f"window of {dedup_window.total_seconds() / 3600:g} h",
        )
    return event


def _actor(message: DeliveredMessage) -> str | None:
    """Who caused the event (the `sub` of the order service's caller); None with auth off."""
    actor = (message.header.properties.headers or {}).get(ACTOR_AMQP_HEADER)
    return str(actor) if actor is not None else None


def _request_id(message: DeliveredMessage) -> str:
    headers = message.header.properties.headers or {}
    return str(headers.get(REQUEST_ID_AMQP_HEADER) or message.header.properties.message_id or "-")


class Breaker:
    """Open while the database is away; the consumer pauses while it is open."""

    def __init__(self) -> None:
        self.opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def open(self, cause: BaseException) -> None:
        self.opened_at = asyncio.get_running_loop().time()
        CONSUMER_BREAKER_OPEN.set(1)
        log.warning(
            "consumer breaker open: the database is unavailable (%s: %s); consumption paused",
            type(cause).__name__,
            cause,
        )

    def tick(self) -> float:
        assert self.opened_at is not None
        seconds = asyncio.get_running_loop().time() - self.opened_at
        CONSUMER_BREAKER_OPEN_SECONDS.set(seconds)
        return seconds

    def close(self) -> None:
        log.warning("consumer breaker closed: the database is back after %.1f s; consumption resumes", self.tick())
        self.opened_at = None
        CONSUMER_BREAKER_OPEN.set(0)
        CONSUMER_BREAKER_OPEN_SECONDS.set(0)


class OrderCreatedConsumer:
    def __init__(self, settings: CustomerSettings) -> None:
        self.settings = settings
        self.breaker = Breaker()
        self.dedup_window = timedelta(hours=settings.processed_events_retention_hours)
        self._buffer: deque[DeliveredMessage] = deque()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._accepting = True
        self._cancelled = False  # the broker cancelled our consumer: the worker consumes again

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

    async def pause(self) -> None:
        """Stop the broker's deliveries (basic.cancel); what it already sent still arrives and is settled."""
        channel, tag, self._consumer_tag = self._channel, self._consumer_tag, None
        if channel is not None and tag is not None and not channel.is_closed:
            with contextlib.suppress(Exception):  # a channel lost meanwhile has stopped consuming anyway
                await channel.basic_cancel(tag)

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
                        await self._give_back(batch)
            finally:
                self._idle.set()

    @staticmethod
    async def _give_back(batch: list[DeliveredMessage]) -> None:
        """A batch that could not be settled (the channel failed under it): closing the channel hands
        every unacked delivery back to the broker, and BrokerLink reconnects."""
        log.exception("consumer: could not settle a batch of %d; returning it to the broker", len(batch))
        if batch and not batch[0].channel.is_closed:
            with contextlib.suppress(Exception):
                await batch[0].channel.close()

    def _take_batch(self) -> list[DeliveredMessage]:
        batch: list[DeliveredMessage] = []
        while self._buffer and len(batch) < self.settings.consumer_batch_size:
            message = self._buffer.popleft()
            if message.channel is self._channel and not message.channel.is_closed:
                batch.append(message)  # (a lost channel's deliveries are the broker's again)
        return batch

    async def _process(self, batch: list[DeliveredMessage]) -> None:
        if not batch:
            return
        CONSUMER_BATCH_SIZE.observe(len(batch))
        if self.breaker.is_open:  # stragglers delivered before the pause took effect
            await self._requeue(batch)
            return
        events: dict[DeliveredMessage, OrderEvent] = {}
        dead: dict[DeliveredMessage, Poison] = {}
        for message in batch:
            try:
                events[message] = parse_event(message.body, self.dedup_window)
            except Poison as exc:
                dead[message] = exc
        try:
            with consumer_span(
                f"{self.settings.orders_queue} process", [message.header.properties.headers for message in events]
            ):
                outcomes, failed = await self._apply(list(events.values()))
        except Exception as exc:  # only a transient failure gets here
            self.breaker.open(exc)
            await self.pause()
            try:
                await self._settle(batch[-1], dead, retry={}, requeue=[m for m in batch if m in events])
            except Exception:  # the broker is in trouble too: closing the channel returns them
                await self._give_back(batch)
            await self._wait_for_database()
            return
        retry = {}
        for message, event in events.items():
            if event.event_id in failed:
                retry[message] = failed[event.event_id]
            elif outcomes[event.event_id] is service.Outcome.UNKNOWN_CUSTOMER:
                dead[message] = Poison("unknown_customer", f"customer {event.data.customer_id} does not exist")
        await self._settle(batch[-1], dead, retry, requeue=[])
        self._count(events, outcomes)

    async def _apply(self, events: list[OrderEvent]) -> tuple[dict[UUID, service.Outcome], dict[UUID, Exception]]:
        """Apply the batch in one transaction; if it fails for a reason other than the database being
        away, apply its events one at a time, so one bad event does not hold back the good ones.
        Returns the outcomes and the events that failed on their own; raises on a transient failure."""
        distinct = list({event.event_id: event for event in events}.values())  # a copy in the batch: once
        if not distinct:
            return {}, {}
        try:
            return await service.apply_orders_created(distinct), {}
        except Exception as exc:
            if is_transient_database_error(exc):
                raise
            if len(distinct) == 1:
                return {}, {distinct[0].event_id: exc}
        outcomes, failed = {}, {}
        for event in distinct:
            try:
                outcomes.update(await service.apply_orders_created([event]))
            except Exception as exc:
                if is_transient_database_error(exc):
                    raise
                failed[event.event_id] = exc
        return outcomes, failed

    def _count(self, events: dict[DeliveredMessage, OrderEvent], outcomes: dict[UUID, service.Outcome]) -> None:
        counted: set[UUID] = set()
        duplicates = 0
        now = datetime.now(UTC)
        for event in events.values():
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

    async def _settle(
        self,
        last: DeliveredMessage,
        dead: dict[DeliveredMessage, Poison],
        retry: dict[DeliveredMessage, Exception],
        requeue: list[DeliveredMessage],
    ) -> None:
        """Publish what goes elsewhere (each confirmed by the broker), then ack the batch in one frame.

        The batch is every delivery up to `last` that an earlier batch did not settle, so one
        multiple-ack covers exactly it. A channel lost on the way returns all of it to the broker.
        """
        sends = [self._dead_letter(m, p) for m, p in dead.items()]
        sends += [self._retry_later(m, exc) for m, exc in retry.items()]
        sends += [self._copy_to(m, self.settings.orders_queue, {}) for m in requeue]
        await asyncio.gather(*sends)
        EVENTS_RETRIED.labels("database_unavailable").inc(len(requeue))
        assert last.delivery_tag is not None  # a delivery always has one (only basic.get-empty has none)
        await last.channel.basic_ack(last.delivery_tag, multiple=True)

    async def _requeue(self, messages: list[DeliveredMessage]) -> None:
        if messages:
            await self._settle(messages[-1], {}, {}, requeue=messages)

    async def _set_aside(self, messages: list[DeliveredMessage]) -> None:
        try:
            await self._requeue(messages)
        except Exception:
            await self._give_back(messages)

    def _drain_buffer(self) -> list[DeliveredMessage]:
        messages = []
        while self._buffer:
            messages.extend(self._take_batch())
        return messages

    async def _wait_for_database(self) -> None:
        """Probe with capped exponential backoff and jitter until the database answers, then resume."""
        attempt = 0
        while self._accepting:
            await self._set_aside(self._drain_buffer())  # stragglers of the paused consumption
            await asyncio.sleep(backoff_delay(attempt, cap=PROBE_BACKOFF_CAP))
            attempt += 1
            self.breaker.tick()
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await repository.probe()
                break
            except Exception as exc:
                log.info(
                    "consumer breaker: database still unavailable after %.0f s (%s)",
                    self.breaker.tick(),
                    type(exc).__name__,
                )
        self.breaker.close()
        if self._accepting and self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):  # a lost channel consumes again on its reconnect
                await self.resume()

    async def _dead_letter(self, message: DeliveredMessage, poison: Poison) -> None:
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
            {REASON_HEADER: str(poison), "x-original-routing-key": message.routing_key},
        )
        EVENTS_DEAD_LETTERED.labels(poison.kind).inc()

    async def _retry_later(self, message: DeliveredMessage, exc: Exception) -> None:
        request_id_var.set(_request_id(message))
        attempt = int(str((message.header.properties.headers or {}).get(ATTEMPT_HEADER) or 0))
        error = f"{type(exc).__name__}: {exc}"[:500]
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
            message, self.settings.retry_queue(delays[attempt]), {ATTEMPT_HEADER: attempt + 1, "x-last-error": error}
        )
        EVENTS_RETRIED.labels("failed").inc()

    async def _copy_to(self, message: DeliveredMessage, routing_key: str, extra_headers: dict) -> None:
        await self._publish_copy(message, self.settings.retry_exchange, routing_key, extra_headers)

    async def _publish_copy(
        self, message: DeliveredMessage, exchange: str, routing_key: str, extra_headers: dict
    ) -> None:
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
                headers={**(properties.headers or {}), **extra_headers},
            ),
        )

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
