"""The outbox relay: publishes committed events with publisher confirms, marks them sent after the ack.

Any number of relays (workers, containers) can run: each claims a batch with
FOR UPDATE SKIP LOCKED. A row whose order has an earlier unsent event waits for
it, so one order's events reach the broker in the order they were written.
"""

import asyncio
import contextlib
import logging
from datetime import timedelta

import asyncpg
from aiormq.abc import AbstractChannel
from aiormq.exceptions import PublishError
from pamqp.commands import Basic
from tortoise.connection import get_connection
from tortoise.timezone import now

from order.db_config import APP
from order.models import IdempotencyKey, OutboxEvent
from order.settings import OrderSettings
from shared.amqp import PERSISTENT, BrokerLink, backoff_delay
from shared.db import asyncpg_dsn, transaction
from shared.events import ORDER_CREATED
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_OLDEST_SECONDS, OUTBOX_PENDING
from shared.request_id import request_id_var

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"
MAX_BATCHES_IN_FLIGHT = 4  # each holds a pooled connection while it waits for the broker
SHUTDOWN_GRACE = 5.0
PURGE_EVERY = timedelta(minutes=5)

CLAIM_BATCH = """
SELECT o.id, o.event_id, o.event_type, o.payload, o.request_id FROM outbox o
WHERE o.sent_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.order_id = o.order_id AND p.sent_at IS NULL AND p.id < o.id)
ORDER BY o.id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
MARK_SENT = "UPDATE outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY($1::bigint[])"
MARK_FAILED = "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])"
BACKLOG = "SELECT count(*), extract(epoch FROM now() - min(created_at)) FROM outbox WHERE sent_at IS NULL"


class OutboxRelay:
    def __init__(self, settings: OrderSettings, link: BrokerLink) -> None:
        self.settings = settings
        self.link = link
        self._wakeup = asyncio.Event()
        self._last_purge = self._last_gauges = float("-inf")
        self._failures = 0

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (in this process)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Start a batch on every wake-up, with up to MAX_BATCHES_IN_FLIGHT awaiting their confirms at once.

        A broker confirm takes tens of milliseconds (a quorum queue commits it to its log); publishing
        one batch at a time would cap the relay at a batch per confirm round trip, below what the API
        accepts. Batches in flight hold their rows locked, so each claims different rows.
        """
        listener = asyncio.create_task(self._listen(), name="outbox notify listener")
        batches: set[asyncio.Task] = set()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.outbox_sweep_interval):
                        await self._wakeup.wait()
                self._wakeup.clear()
                if len(batches) >= MAX_BATCHES_IN_FLIGHT:
                    await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED)
                if self.link.is_up:
                    batch = asyncio.create_task(self._batch(self.link.channel), name="outbox batch")
                    batches.add(batch)
                    batch.add_done_callback(batches.discard)
                await self.housekeeping()
        finally:
            listener.cancel()
            if batches:  # on shutdown, let the batches in flight get their confirms and commit
                await asyncio.wait(batches, timeout=SHUTDOWN_GRACE)
            for task in (*batches, listener):
                task.cancel()
            await asyncio.gather(*batches, listener, return_exceptions=True)

    async def _batch(self, channel: AbstractChannel) -> None:
        try:
            claimed = await self.publish_batch(channel)
        except Exception as exc:
            log.warning("outbox relay: publishing failed, will retry (%s: %s)", type(exc).__name__, exc)
            await asyncio.sleep(backoff_delay(self._failures))
            self._failures += 1
            self.wake()
            return
        self._failures = 0
        if claimed == self.settings.outbox_batch_size:
            # A full batch likely left rows behind. (An event that waited for its order's earlier event
            # in the same batch goes out with the next wake-up, or the sweep at the latest.)
            self.wake()

    async def publish_batch(self, channel: AbstractChannel) -> int:
        """Claim, publish and mark one batch; returns how many rows it claimed."""
        async with transaction(APP) as conn:
            _, rows = await conn.execute_query(CLAIM_BATCH, [self.settings.outbox_batch_size])
            if not rows:
                return 0
            try:
                # Pipelined: every publish is on the wire before the first confirm is awaited.
                results = await asyncio.gather(*(self._publish(channel, row) for row in rows))
            except Exception:
                await self.link.reset("publish failed")
                raise
            acked = [row["id"] for row, ok in zip(rows, results, strict=True) if ok]
            nacked = [row["id"] for row, ok in zip(rows, results, strict=True) if not ok]
            await conn.execute_query(MARK_SENT, [acked])
            if nacked:
                log.warning("outbox relay: broker nacked %d event(s); they stay pending", len(nacked))
                await conn.execute_query(MARK_FAILED, [nacked])
        for row, ok in zip(rows, results, strict=True):
            if ok:
                EVENTS_PUBLISHED.labels(row["event_type"]).inc()
        return len(rows)

    async def _publish(self, channel: AbstractChannel, row) -> bool:
        """True once the broker confirmed the event; False leaves it pending for a later batch."""
        request_id_var.set(row["request_id"])
        try:
            confirmation = await self._send(channel, row)
        except PublishError:  # mandatory and no queue bound yet: keep it until the consumer's queue exists
            log.warning("outbox relay: no queue takes %s yet; it stays pending", row["event_type"])
            return False
        return isinstance(confirmation, Basic.Ack)

    def _send(self, channel: AbstractChannel, row):
        # wait=False: don't hold the channel's lock until the frames are written (one loop turn per
        # message, serialising the batch); the broker's confirm is what makes it safe.
        return channel.basic_publish(
            row["payload"].encode(),
            exchange=self.settings.events_exchange,
            routing_key=row["event_type"],
            # order.created must reach the customer service's queue; other events are for whoever listens.
            mandatory=row["event_type"] == ORDER_CREATED,
            properties=Basic.Properties(
                content_type="application/json",
                delivery_mode=PERSISTENT,
                message_id=str(row["event_id"]),
                message_type=row["event_type"],
                headers={"x-request-id": row["request_id"]},
            ),
            wait=False,
        )

    async def housekeeping(self) -> None:
        """Backlog gauges about once a sweep interval; purge old sent rows and expired keys now and then."""
        try:
            await self._housekeeping()
        except Exception as exc:  # the database is away: the gauges and the purge can wait
            log.warning("outbox housekeeping skipped (%s: %s)", type(exc).__name__, exc)

    async def _housekeeping(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_gauges < self.settings.outbox_sweep_interval:
            return
        self._last_gauges = loop_time
        _, rows = await get_connection(APP).execute_query(BACKLOG)
        pending, oldest = rows[0][0], rows[0][1]
        OUTBOX_PENDING.set(pending)
        OUTBOX_OLDEST_SECONDS.set(float(oldest or 0))
        if loop_time - self._last_purge < PURGE_EVERY.total_seconds():
            return
        self._last_purge = loop_time
        sent_before = timedelta(hours=self.settings.outbox_retention_hours)
        keys_before = timedelta(hours=self.settings.idempotency_retention_hours)
        purged = await OutboxEvent.filter(sent_at__lt=now() - sent_before).delete()
        expired = await IdempotencyKey.filter(created_at__lt=now() - keys_before).delete()
        if purged or expired:
            log.info("purged %d sent outbox row(s) and %d expired idempotency key(s)", purged, expired)

    async def _listen(self) -> None:
        """LISTEN for other instances' commits (a trigger NOTIFYs on insert), reconnecting when dropped."""
        attempt = 0
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url), timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
                attempt = 0
                await lost.wait()
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("outbox listener: %s; reconnecting", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(backoff_delay(attempt))
            attempt += 1
