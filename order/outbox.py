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
from pamqp.commands import Basic
from tortoise.connection import get_connection
from tortoise.timezone import now

from order.db_config import APP
from order.models import IdempotencyKey, OutboxEvent
from order.settings import OrderSettings
from shared.amqp import PERSISTENT, BrokerLink, backoff_delay
from shared.db import asyncpg_dsn, transaction
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_OLDEST_SECONDS, OUTBOX_PENDING
from shared.request_id import request_id_var

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"
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

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (in this process)."""
        self._wakeup.set()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox notify listener")
        try:
            attempt = 0
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.outbox_sweep_interval):
                        await self._wakeup.wait()
                self._wakeup.clear()
                try:
                    await self.drain()
                    await self.housekeeping()
                    attempt = 0
                except Exception as exc:
                    log.warning("outbox relay: publishing failed, will retry (%s: %s)", type(exc).__name__, exc)
                    await asyncio.sleep(backoff_delay(attempt))
                    attempt += 1
                    self._wakeup.set()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def drain(self) -> None:
        """Publish batch after batch while they come back full.

        A short batch means nothing else was claimable just now; what commits later wakes the relay
        again, and an event held back behind its order's earlier one goes out on the next wake or sweep.
        """
        while self.link.is_up and await self.publish_batch(self.link.channel) == self.settings.outbox_batch_size:
            pass

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
        request_id_var.set(row["request_id"])
        confirmation = await channel.basic_publish(
            row["payload"].encode(),
            exchange=self.settings.events_exchange,
            routing_key=row["event_type"],
            properties=Basic.Properties(
                content_type="application/json",
                delivery_mode=PERSISTENT,
                message_id=str(row["event_id"]),
                message_type=row["event_type"],
                headers={"x-request-id": row["request_id"]},
            ),
        )
        return isinstance(confirmation, Basic.Ack)

    async def housekeeping(self) -> None:
        """Backlog gauges about once a sweep interval; purge old sent rows and expired keys now and then."""
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
