"""The outbox relay: publishes committed events with publisher confirms, deletes them after the ack.

Any number of relays (workers, containers) can run: each claims a batch with
FOR UPDATE SKIP LOCKED. A row whose order has an earlier pending event waits for
it, so one order's events reach the broker in the order they were written.

The outbox holds only pending events (a confirmed one is deleted), so a claim reads
the head of the primary key: its cost is the batch's, whatever the backlog or the
history. The housekeeper (order/housekeeping.py) vacuums the table itself, so the
dead index entries that deletes leave behind never pile up, autovacuum or not.

The relay wakes on every commit that wrote outbox rows, this process's or another's: a trigger
NOTIFYs at commit and `listen_for_commits` hears it; this process's handlers also wake it directly, a
millisecond or more sooner on a busy machine (the notification needs two more processes to run). A
sweep every OUTBOX_SWEEP_INTERVAL finds what a lost notification (or a pooler that cannot LISTEN)
would leave behind.
"""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable

import asyncpg
from aiormq.abc import AbstractChannel

from order import repository
from order.db_config import APP
from order.metrics import EVENTS_PUBLISHED, RELAY_WAITING
from order.publisher import EventPublisher
from order.settings import OrderSettings
from shared.amqp import BrokerLink, backoff_delay
from shared.db import asyncpg_dsn, is_transient_database_error, transaction

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"  # the trigger's (migration 1)
MAX_BATCHES_IN_FLIGHT = 4  # each holds a pooled connection while it waits for the broker
SHUTDOWN_GRACE = 5.0


class OutboxRelay:
    def __init__(self, settings: OrderSettings, link: BrokerLink) -> None:
        self.settings = settings
        self.link = link
        self.publisher = EventPublisher(link, settings.events_exchange, settings.outbox_confirm_timeout)
        self._wakeup = asyncio.Event()
        self._failures = 0
        self._backlog = False  # the last batch came back full: more rows are waiting than one batch takes

    def wake(self) -> None:
        """Look for pending events now (a commit wrote some, or a full batch left some behind)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Start a batch on a wake-up; with a backlog, up to MAX_BATCHES_IN_FLIGHT awaiting their confirms at once.

        Under a steady stream every commit wakes the relay. While a batch is in flight and no backlog
        is known, the next one waits for it and then takes all that committed meanwhile: batches grow
        with the load (at 500 orders/s here, 118 events per batch instead of 54: half the transactions).
        With a backlog (a batch came back full), a broker confirm takes milliseconds (a quorum queue
        commits it to its log), and one batch at a time would cap the relay at a batch per confirm
        round trip: up to MAX_BATCHES_IN_FLIGHT run.
        Batches in flight hold their rows locked, so each claims different rows. While the broker is
        away or blocked, no batch starts: nothing is claimed, so no transaction or row lock waits on it.
        """
        batches: set[asyncio.Task] = set()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.outbox_sweep_interval):
                        await self._wakeup.wait()
                self._wakeup.clear()
                if batches and (not self._backlog or len(batches) >= MAX_BATCHES_IN_FLIGHT):
                    await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED)
                waiting = "broker" if not self.link.is_up else "blocked" if self.link.is_blocked else ""
                RELAY_WAITING.labels("broker").set(waiting == "broker")
                RELAY_WAITING.labels("blocked").set(waiting == "blocked")
                if waiting:
                    continue  # the sweep looks again; BrokerLink reconnects by itself
                assert self.link.channel is not None  # is_up
                batch = asyncio.create_task(self._batch(self.link.channel), name="outbox batch")
                batches.add(batch)
                batch.add_done_callback(batches.discard)
        finally:
            if batches:  # on shutdown, let the batches in flight get their confirms and commit
                await asyncio.wait(batches, timeout=SHUTDOWN_GRACE)
            for task in batches:
                task.cancel()
            await asyncio.gather(*batches, return_exceptions=True)

    async def _batch(self, channel: AbstractChannel) -> None:
        try:
            claimed = await self.relay_batch(channel)
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
        self._backlog = claimed == self.settings.outbox_batch_size
        if self._backlog:
            # A full batch likely left rows behind. (An event that waited for its order's earlier event
            # in the same batch goes out with the next wake-up, or the sweep at the latest.)
            self.wake()

    async def relay_batch(self, channel: AbstractChannel) -> int:
        """Claim, publish and settle one batch in one transaction; returns how many rows it claimed."""
        async with transaction(APP) as conn:
            rows = await repository.claim_events(conn, self.settings.outbox_batch_size)
            if not rows:
                return 0
            confirmed = await self.publisher.publish(channel, rows)
            published = [row for row, ok in zip(rows, confirmed, strict=True) if ok]
            refused = [row["id"] for row, ok in zip(rows, confirmed, strict=True) if not ok]
            await repository.delete_events(conn, [row["id"] for row in published])
            if refused:
                log.warning("outbox relay: broker refused %d event(s); they stay pending", len(refused))
                await repository.count_refusal(conn, refused)
        for event_type, count in Counter(row["event_type"] for row in published).items():
            EVENTS_PUBLISHED.labels(event_type).inc(count)  # once per type and batch, not per event
        return len(rows)


async def listen_for_commits(settings: OrderSettings, on_commit: Callable[[], None]) -> None:
    """LISTEN for commits that wrote outbox rows (a trigger NOTIFYs), reconnecting when dropped.

    LISTEN needs a session of its own: through a transaction pooler (PgBouncer) point
    ORDER_LISTEN_DATABASE_URL at PostgreSQL itself; without it, the sweep still finds every row.
    """
    attempt = 0
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(asyncpg_dsn(settings.listen_database_url), timeout=5)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: on_commit())
            attempt = 0
            await lost.wait()
        except Exception as exc:  # any failure (a refused or lost session, a bad URL): the sweep covers it
            log.warning("outbox listener: %s: %s; reconnecting", type(exc).__name__, exc)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()
        await asyncio.sleep(backoff_delay(attempt))
        attempt += 1
