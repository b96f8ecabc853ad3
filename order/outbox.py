"""The outbox relay: publishes committed events with publisher confirms, deletes them after the ack.

Two ways out of the outbox:

- **Handed over** (the hot path): a new order's `order.created` is written with a lease (`leased_until`,
  OUTBOX_LEASE from now) while this process's broker link is up, and the handler hands the row to this
  process's relay after the commit. The relay publishes it from memory at once and deletes it by its
  event id after the broker's confirm: no claim, no transaction, one statement per batch. No other relay
  claims a leased row, and no NOTIFY is sent for one. The lease is what makes this safe across processes:
  it holds only while the worker holds its liveness lock (a session advisory lock on the relay's own
  session, `hold_relay_session`), so when a worker dies its session ends and any relay's next claim (a
  sweep away at most) publishes its rows; a live worker that cannot publish them gives them back, and
  a lease also runs out after OUTBOX_LEASE whatever happens. At worst a row is published twice, and the
  consumer dedupes by event id. Wolverine's and MassTransit's outboxes send right after the commit and
  recover a dead node's messages the same way.
- **Claimed**: every other row (a status change, a row written while the broker was away, a lease that
  ran out, a row the broker refused). Any number of relays (workers, containers) claim batches with
  FOR UPDATE SKIP LOCKED in a transaction, publish them and delete them before the commit.

A row whose order has an earlier pending event (leased or not) is not claimed before it, so one
order's events reach the broker in the order they were written. (`order.created` is an order's first
event, so handing it over never overtakes another.)

The outbox holds only pending events (a confirmed one is deleted), so a claim reads the head of the
primary key: its cost is the batch's, whatever the backlog or the history. The housekeeper
(order/housekeeping.py) vacuums the table itself, so the dead index entries that deletes leave behind
never pile up, autovacuum or not.

A claim starts when a commit wrote rows to claim, this process's or another's: a trigger NOTIFYs at commit
and `hold_relay_session` hears it; this process's handlers also wake the relay directly. A sweep every
OUTBOX_SWEEP_INTERVAL (also while handed-over rows keep the relay busy) finds what a lost notification, a
pooler that cannot LISTEN, or a dead worker's lease leaves behind.
"""

import asyncio
import contextlib
import itertools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine

import asyncpg
from aiormq.abc import AbstractChannel
from tortoise.backends.base.client import BaseDBAsyncClient

from order import repository
from order.db_config import APP
from order.events import OutboxRow
from order.metrics import EVENTS_PUBLISHED, RELAY_WAITING
from order.publisher import EventPublisher
from order.repository import LIVENESS_LOCK_CLASS, Lease
from order.settings import OrderSettings
from shared.amqp import BrokerLink, backoff_delay
from shared.db import asyncpg_dsn, db, is_transient_database_error, transaction

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"  # the trigger's (migrations 1 and 4)
MAX_BATCHES_IN_FLIGHT = 4  # of each kind; a claimed batch holds a pooled connection while it waits for the broker
SHUTDOWN_GRACE = 5.0


class OutboxRelay:
    def __init__(self, settings: OrderSettings, link: BrokerLink) -> None:
        self.settings = settings
        self.link = link
        self.publisher = EventPublisher(link, settings.events_exchange, settings.outbox_confirm_timeout)
        self._wakeup = asyncio.Event()
        self._owner: int | None = None  # this worker's liveness lock, while hold_relay_session holds it
        self._claim_wanted = False
        self._last_claim = float("-inf")
        self._handed: list[OutboxRow] = []  # committed with a lease by this process, not yet sent
        self._claims_started = 0
        self._claims_before_handed = 0  # how many had started when the first row in _handed came
        self._claiming: set[asyncio.Task] = set()
        self._sending: set[asyncio.Task] = set()  # handed-over rows in flight
        self._to_give_back: list[OutboxRow] = []  # leased rows this process will not publish
        self._giving_back: set[asyncio.Task] = set()
        self._watching_link: set[asyncio.Task] = set()  # at most one: wakes the relay when the broker is back
        self._failures = 0
        self._waiting_shown: str | None = None  # what RELAY_WAITING says for the broker: "", "broker" or "blocked"
        self._backlog = False  # the last claim came back full: more rows are waiting than one batch takes

    def alive(self, owner: int | None) -> None:
        """This worker holds its liveness lock `owner` (None: it does not, so nothing may be leased)."""
        self._owner = owner

    def lease(self) -> Lease | None:
        """The lease of a row written now, to be handed over to this relay after its commit; None while the
        broker is away or blocked, or the liveness lock is not held: the row is then left to the claim."""
        if self._owner is None or not self.link.is_up or self.link.is_blocked:
            return None
        return Lease(self.settings.outbox_lease, self._owner)

    def hand_over(self, row: OutboxRow) -> None:
        """A row this process committed with a lease: publish it now, without a claim."""
        if not self._handed:
            self._claims_before_handed = self._claims_started
        self._handed.append(row)
        self._wakeup.set()

    def give_back(self, row: OutboxRow) -> None:
        """A row written with a lease whose commit failed, or may have succeeded with its answer lost: if it
        is there, let any relay claim it (once the database answers again)."""
        self._to_give_back.append(row)
        self._wakeup.set()

    def wake(self) -> None:
        """Claim pending events now (a commit wrote some, or a full batch left some behind)."""
        self._claim_wanted = True
        self._wakeup.set()

    async def run(self) -> None:
        """Start batches as rows are handed over and claims are wanted; each batch is a task.

        Each kind of batch waits for the one in flight of its kind and then takes all that came
        meanwhile, so batches grow with the load (fewer statements and tasks per event; a handed-over
        row goes out at once when none is in flight). With a backlog (a full batch's worth waits) up to
        MAX_BATCHES_IN_FLIGHT of a kind run, since one at a time would cap the relay at a batch per
        confirm round trip; claims take different rows (they hold them locked). While the broker is away
        or blocked, nothing is claimed (so no transaction or row lock waits on it) and handed-over rows
        are given back to the claim.
        """
        loop = asyncio.get_running_loop()
        sweep_interval = self.settings.outbox_sweep_interval
        try:
            while True:
                # The sweep's timer, unless a claim is already wanted and waits for the one in flight to end.
                sweep = None if self._claim_wanted and self._claiming else self._last_claim + sweep_interval
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(sweep):
                        await self._wakeup.wait()
                self._wakeup.clear()
                if loop.time() >= self._last_claim + sweep_interval:
                    self._claim_wanted = True  # the sweep
                waiting = "broker" if not self.link.is_up else "blocked" if self.link.is_blocked else ""
                if waiting != self._waiting_shown:  # a multiprocess gauge write is not free: not on every wake
                    RELAY_WAITING.labels("broker").set(waiting == "broker")
                    RELAY_WAITING.labels("blocked").set(waiting == "blocked")
                    self._waiting_shown = waiting
                if waiting:
                    self._to_give_back += self._take_handed()
                if self._to_give_back and not self._giving_back:
                    rows, self._to_give_back = self._to_give_back, []
                    self._start(self._giving_back, self._give_back(rows))
                if waiting:
                    self._last_claim = loop.time()  # the next look is a sweep away; BrokerLink reconnects by itself
                    if waiting == "broker" and not self._watching_link:  # or sooner: when it is back
                        self._start(self._watching_link, self._wake_when_up(), "outbox relay: waiting for the broker")
                    continue
                assert self.link.channel is not None  # is_up
                if self._handed and (not self._sending or self._handed_backlog()):
                    claims_before = self._claims_before_handed
                    rows = self._take_handed(self.settings.outbox_batch_size)
                    self._start(self._sending, self._send_handed(self.link.channel, rows, claims_before))
                if self._claim_wanted and (
                    not self._claiming or (self._backlog and len(self._claiming) < MAX_BATCHES_IN_FLIGHT)
                ):
                    self._claim_wanted = False
                    self._last_claim = loop.time()
                    self._claims_started += 1
                    self._start(self._claiming, self._claim_batch(self.link.channel))
        finally:
            unsent = self._to_give_back + self._take_handed()
            if unsent:  # any relay may claim them now
                self._start(self._giving_back, self._give_back(unsent))
            for task in self._watching_link:
                task.cancel()
            batches = self._claiming | self._sending | self._giving_back
            if batches:  # on shutdown, let the batches in flight get their confirms and commit
                await asyncio.wait(batches, timeout=SHUTDOWN_GRACE)
            for task in batches:
                task.cancel()
            await asyncio.gather(*batches, return_exceptions=True)

    def _handed_backlog(self) -> bool:
        """Enough handed-over rows wait to fill a batch: another batch may start beside those in flight."""
        return len(self._handed) >= self.settings.outbox_batch_size and len(self._sending) < MAX_BATCHES_IN_FLIGHT

    def _take_handed(self, limit: int | None = None) -> list[OutboxRow]:
        """The rows handed over (up to `limit`)."""
        rows, self._handed = self._handed[:limit], self._handed[limit:] if limit else []
        return rows

    def _start(self, tasks: set[asyncio.Task], work: Coroutine[None, None, None], name: str = "outbox batch") -> None:
        task = asyncio.create_task(work, name=name)
        tasks.add(task)

        def done(task: asyncio.Task) -> None:
            tasks.discard(task)
            self._wakeup.set()  # room for the next batch

        task.add_done_callback(done)

    async def _send_handed(self, channel: AbstractChannel, rows: list[OutboxRow], claims_before: int) -> None:
        try:
            confirmed = await self.publisher.publish(channel, rows)
        except Exception as exc:
            log.warning("outbox relay: %d event(s) not published (%s: %s); back to the claim", len(rows), *_named(exc))
            self._to_give_back += rows  # cleared by the loop's one give-back task (this task's end wakes it)
            return
        # Published: if the rows stayed, they would go out again when their lease runs out.
        await self._until_done(
            f"deleting {len(rows)} published event(s)", lambda: self._settle(db(APP), rows, confirmed)
        )
        if self._claims_started != claims_before:
            self.wake()  # a claim since they were handed over may have left a later event of their orders

    async def _wake_when_up(self) -> None:
        """The rows written while the broker was away go out as soon as it is back, not at the next sweep."""
        await self.link.wait_up()
        self.wake()

    async def _give_back(self, rows: list[OutboxRow]) -> None:
        await self._until_done(
            f"clearing {len(rows)} lease(s)", lambda: repository.release_leases([row.event_id for row in rows])
        )
        self.wake()

    async def _until_done(self, what: str, statement: Callable[[], Awaitable[None]]) -> None:
        """Run one statement, retried with backoff while the database is away, for at most OUTBOX_LEASE
        (after that the leases have run out and a claim takes the rows anyway)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.settings.outbox_lease
        for attempt in itertools.count():
            try:
                await statement()
            except Exception as exc:
                RELAY_WAITING.labels("database").set(is_transient_database_error(exc))
                delay = backoff_delay(attempt)
                if loop.time() + delay > give_up:
                    log.warning("outbox relay: gave up %s (%s: %s); their leases run out", what, *_named(exc))
                    return
                log.warning("outbox relay: %s failed, will retry (%s: %s)", what, *_named(exc))
                await asyncio.sleep(delay)
            else:
                RELAY_WAITING.labels("database").set(0)
                return

    async def _claim_batch(self, channel: AbstractChannel) -> None:
        try:
            claimed = await self.relay_batch(channel)
        except Exception as exc:
            # The transaction rolled back: the rows are pending again, for this relay or another.
            RELAY_WAITING.labels("database").set(is_transient_database_error(exc))
            log.warning("outbox relay: batch rolled back, will retry (%s: %s)", *_named(exc))
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
            if rows:
                await self._settle(conn, rows, await self.publisher.publish(channel, rows))
        return len(rows)

    @staticmethod
    async def _settle(conn: BaseDBAsyncClient, rows: list[OutboxRow], confirmed: list[bool]) -> None:
        """Delete what the broker confirmed; what it refused stays pending, for any relay's claim."""
        published = [row for row, ok in zip(rows, confirmed, strict=True) if ok]
        refused = [row.event_id for row, ok in zip(rows, confirmed, strict=True) if not ok]
        await repository.delete_events(conn, [row.event_id for row in published])
        if refused:
            log.warning("outbox relay: broker refused %d event(s); they stay pending", len(refused))
            await repository.count_refusal(conn, refused)
        for event_type, count in Counter(row.event_type for row in published).items():
            EVENTS_PUBLISHED.labels(event_type).inc(count)  # once per type and batch, not per event


def _named(exc: BaseException) -> tuple[str, BaseException]:
    return type(exc).__name__, exc


async def hold_relay_session(settings: OrderSettings, relay: OutboxRelay) -> None:
    """The relay's own PostgreSQL session, reconnected when dropped: it LISTENs for commits that wrote
    outbox rows (a trigger NOTIFYs) and holds this worker's liveness lock, which its leases depend on.

    It needs a session of its own: through a transaction pooler (PgBouncer) point ORDER_LISTEN_DATABASE_URL
    at PostgreSQL itself. Without it, the sweep still finds every row, and nothing is leased (a new order's
    event is claimed like any other).
    """
    attempt = 0
    owner = random.randrange(1, 2**31)
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(asyncpg_dsn(settings.listen_database_url), timeout=5)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: relay.wake())
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LIVENESS_LOCK_CLASS, owner):
                owner = random.randrange(1, 2**31)  # another worker's (or this one's, on a session not yet ended)
            relay.alive(owner)
            attempt = 0
            await lost.wait()
        except Exception as exc:  # any failure (a refused or lost session, a bad URL): the sweep covers it
            log.warning("outbox relay session: %s: %s; reconnecting", type(exc).__name__, exc)
        finally:
            relay.alive(None)
            if conn is not None and not conn.is_closed():
                await conn.close()
        await asyncio.sleep(backoff_delay(attempt))
        attempt += 1
