"""The claim: every row not handed over (a status change, a row written while the broker was away, a lease
that ran out or whose worker died, a row the broker refused). Any number of relays claim batches with FOR
UPDATE SKIP LOCKED in a transaction, publish them and delete them before the commit.

A claim starts when a commit wrote rows to claim (this process's handlers wake it; a trigger's NOTIFY wakes
every relay), and at every sweep, which finds what a lost notification or a dead worker leaves behind.
"""

import asyncio
import logging

from aiormq.abc import AbstractChannel

from order.db_config import APP
from order.outbox import store
from order.outbox.in_flight import MAX_BATCHES_IN_FLIGHT, InFlight
from order.outbox.publisher import EventPublisher, settle
from order.outbox.waiting import named, show_database_error
from order.settings import OrderSettings
from shared.amqp import backoff_delay
from shared.db import transaction

log = logging.getLogger(__name__)


class Claims:
    def __init__(self, settings: OrderSettings, publisher: EventPublisher, wakeup: asyncio.Event) -> None:
        self.wanted = False
        self.started = 0  # how many claims have started (the hand-over asks whether one did meanwhile)
        self.in_flight = InFlight(wakeup)
        self._batch_size = settings.outbox_batch_size
        self._sweep_interval = settings.outbox_sweep_interval
        self._publisher = publisher
        self._wakeup = wakeup
        self._last = float("-inf")  # when the last claim started
        self._failures = 0
        self._backlog = False  # the last claim came back full: more rows wait than one batch takes

    def want(self) -> None:
        """Claim pending events now (a commit wrote some, or a full batch left some behind)."""
        self.wanted = True
        self._wakeup.set()

    def next_sweep(self) -> float | None:
        """When the sweep is due; None while a wanted claim only waits for the one in flight to end."""
        return None if self.wanted and self.in_flight else self._last + self._sweep_interval

    def sweep_if_due(self) -> None:
        if asyncio.get_running_loop().time() >= self._last + self._sweep_interval:
            self.wanted = True

    def postpone(self) -> None:
        """Nothing is claimed now (the broker is away or blocking us): the next look is a sweep away."""
        self._last = asyncio.get_running_loop().time()

    def start_if_wanted(self, channel: AbstractChannel) -> None:
        """One claim at a time, or up to MAX_BATCHES_IN_FLIGHT under a backlog (they take different rows:
        each holds its own locked)."""
        if self.wanted and (not self.in_flight or (self._backlog and len(self.in_flight) < MAX_BATCHES_IN_FLIGHT)):
            self.wanted = False
            self._last = asyncio.get_running_loop().time()
            self.started += 1
            self.in_flight.start(self._claim_batch(channel))

    async def _claim_batch(self, channel: AbstractChannel) -> None:
        try:
            claimed = await self.relay_batch(channel)
        except Exception as exc:
            # The transaction rolled back: the rows are pending again, for this relay or another.
            show_database_error(exc)
            log.warning("outbox relay: batch rolled back, will retry (%s: %s)", *named(exc))
            await asyncio.sleep(backoff_delay(self._failures))
            self._failures += 1
            self.want()
            return
        show_database_error(None)
        self._failures = 0
        self._backlog = claimed == self._batch_size
        if self._backlog:
            # A full batch likely left rows behind. (An event that waited for its order's earlier event
            # in the same batch goes out with the next wake-up, or the sweep at the latest.)
            self.want()

    async def relay_batch(self, channel: AbstractChannel) -> int:
        """Claim, publish and settle one batch in one transaction; returns how many rows it claimed."""
        async with transaction(APP) as conn:
            rows = await store.claim_events(conn, self._batch_size)
            if rows:
                await settle(conn, rows, await self._publisher.publish(channel, rows))
        return len(rows)
