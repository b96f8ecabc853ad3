"""The outbox relay: publishes committed events with publisher confirms, deletes them after the ack.

Any number of relays (workers, containers) can run: each claims a batch with
FOR UPDATE SKIP LOCKED. A row whose order has an earlier pending event waits for
it, so one order's events reach the broker in the order they were written.

The outbox holds only pending events (a confirmed one is deleted), so a claim reads
the head of the primary key: its cost is the batch's, whatever the backlog or the
history. The housekeeper (order/housekeeping.py) vacuums the table itself, so the
dead index entries that deletes leave behind never pile up, autovacuum or not.
"""

import asyncio
import contextlib
import logging

import asyncpg
from aiormq.abc import AbstractChannel
from aiormq.exceptions import PublishError
from pamqp.commands import Basic

from order.db_config import APP
from order.metrics import RELAY_WAITING
from order.settings import OrderSettings
from shared.amqp import PERSISTENT, BrokerLink, backoff_delay
from shared.db import asyncpg_dsn, is_transient_database_error, transaction
from shared.events import ORDER_CREATED
from shared.metrics import EVENTS_PUBLISHED
from shared.request_id import request_id_var

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"
MAX_BATCHES_IN_FLIGHT = 4  # each holds a pooled connection while it waits for the broker
SHUTDOWN_GRACE = 5.0
BLOCKED_POLL = 0.1  # how often a batch waiting for confirms looks whether the broker blocked us

# The claim, in two steps the planner cannot reorder: the first `$1` rows nobody else holds (an index
# scan of the primary key from its head: the only plan for ORDER BY id LIMIT on a table of pending
# rows), then, per claimed row, one probe of (order_id, id) for an earlier pending event of its order.
# A scalar subquery is always run per row (a NOT EXISTS could become an anti join over the backlog).
CLAIM_BATCH = """
WITH claimed AS MATERIALIZED (
    SELECT id, order_id, event_id, event_type, payload, request_id FROM outbox
    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
SELECT id, event_id, event_type, payload, request_id FROM claimed c
WHERE c.id = (SELECT min(p.id) FROM outbox p WHERE p.order_id = c.order_id)
ORDER BY id
"""
DELETE_SENT = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
MARK_REFUSED = "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])"


class BrokerBlocked(Exception):
    """The broker stopped reading our publishes (connection.blocked: a memory or disk alarm)."""


class ConfirmsTimedOut(Exception):
    """The broker took the publishes but did not confirm them in time."""


class OutboxRelay:
    def __init__(self, settings: OrderSettings, link: BrokerLink) -> None:
        self.settings = settings
        self.link = link
        self._wakeup = asyncio.Event()
        self._failures = 0

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (in this process), and by the NOTIFY listener."""
        self._wakeup.set()

    async def run(self) -> None:
        """Start a batch on every wake-up, with up to MAX_BATCHES_IN_FLIGHT awaiting their confirms at once.

        A broker confirm takes milliseconds (a quorum queue commits it to its log); publishing one
        batch at a time would cap the relay at a batch per confirm round trip. Batches in flight hold
        their rows locked, so each claims different rows. While the broker is away or blocked, no
        batch starts: nothing is claimed, so no transaction or row lock waits on it.
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
                waiting = "broker" if not self.link.is_up else "blocked" if self.link.is_blocked else ""
                RELAY_WAITING.labels("broker").set(waiting == "broker")
                RELAY_WAITING.labels("blocked").set(waiting == "blocked")
                if waiting:
                    continue  # the sweep looks again; BrokerLink reconnects by itself
                batch = asyncio.create_task(self._batch(self.link.channel), name="outbox batch")
                batches.add(batch)
                batch.add_done_callback(batches.discard)
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
            # The transaction rolled back: the rows are pending again, for this relay or another.
            RELAY_WAITING.labels("database").set(is_transient_database_error(exc))
            log.warning("outbox relay: batch rolled back, will retry (%s: %s)", type(exc).__name__, exc)
            await asyncio.sleep(backoff_delay(self._failures))
            self._failures += 1
            self.wake()
            return
        RELAY_WAITING.labels("database").set(0)
        self._failures = 0
        if claimed == self.settings.outbox_batch_size:
            # A full batch likely left rows behind. (An event that waited for its order's earlier event
            # in the same batch goes out with the next wake-up, or the sweep at the latest.)
            self.wake()

    async def publish_batch(self, channel: AbstractChannel) -> int:
        """Claim, publish and settle one batch; returns how many rows it claimed."""
        async with transaction(APP) as conn:
            _, rows = await conn.execute_query(CLAIM_BATCH, [self.settings.outbox_batch_size])
            if not rows:
                return 0
            results = await self._publish_all(channel, rows)
            acked = [row["id"] for row, ok in zip(rows, results, strict=True) if ok]
            refused = [row["id"] for row, ok in zip(rows, results, strict=True) if not ok]
            await conn.execute_query(DELETE_SENT, [acked])
            if refused:
                log.warning("outbox relay: broker refused %d event(s); they stay pending", len(refused))
                await conn.execute_query(MARK_REFUSED, [refused])
        for row, ok in zip(rows, results, strict=True):
            if ok:
                EVENTS_PUBLISHED.labels(row["event_type"]).inc()
        return len(rows)

    async def _publish_all(self, channel: AbstractChannel, rows) -> list[bool]:
        """Pipelined: every publish is on the wire before the first confirm is awaited.

        Gives up (and the caller rolls back, releasing the rows) when the broker blocks the
        connection or the confirms take longer than OUTBOX_CONFIRM_TIMEOUT.
        """
        publishes = [asyncio.ensure_future(self._publish(channel, row)) for row in rows]
        try:
            async with asyncio.timeout(self.settings.outbox_confirm_timeout):
                pending = set(publishes)
                while pending:
                    _, pending = await asyncio.wait(pending, timeout=BLOCKED_POLL)
                    if pending and self.link.is_blocked:
                        raise BrokerBlocked("the broker blocked the connection (memory or disk alarm)")
        except BaseException as exc:
            for publish in publishes:
                publish.cancel()
            await asyncio.gather(*publishes, return_exceptions=True)
            if isinstance(exc, TimeoutError):
                await self.link.reset("publisher confirms timed out")
                raise ConfirmsTimedOut(f"no confirm within {self.settings.outbox_confirm_timeout:g} s") from None
            raise
        try:
            return [publish.result() for publish in publishes]
        except Exception:
            await self.link.reset("publish failed")
            raise

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

    async def _listen(self) -> None:
        """LISTEN for other instances' commits (a trigger NOTIFYs on insert), reconnecting when dropped.

        LISTEN needs a session of its own: through a transaction pooler (PgBouncer) point
        ORDER_LISTEN_DATABASE_URL at PostgreSQL itself; without it, the sweep still finds every row.
        """
        attempt = 0
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self.settings.listen_database_url), timeout=5)
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
