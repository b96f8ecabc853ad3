"""Giving leases back: rows leased to this process that it will not publish go back to any relay's claim
at once, rather than when their lease runs out."""

import asyncio
from collections.abc import Callable

from order.events import OutboxRow
from order.outbox import store
from order.outbox.in_flight import InFlight
from order.outbox.waiting import until_done


class LeaseReturns:
    """Rows whose commit may have happened with its answer lost, whose publish failed, that the broker's
    absence holds back, or that the relay leaves behind when it stops."""

    def __init__(self, lease_seconds: float, wake_claim: Callable[[], None], wakeup: asyncio.Event) -> None:
        self.rows: list[OutboxRow] = []  # not yet given back
        self.in_flight = InFlight(wakeup)  # one at a time: it takes all that came meanwhile
        self._lease_seconds = lease_seconds
        self._wake_claim = wake_claim
        self._wakeup = wakeup

    def give_back(self, row: OutboxRow) -> None:
        """A row written with a lease whose commit failed, or may have succeeded with its answer lost: if it
        is there, let any relay claim it (once the database answers again)."""
        self.rows.append(row)
        self._wakeup.set()

    def add(self, rows: list[OutboxRow]) -> None:
        """Rows the relay itself gives back (it is running: the next give-back takes them)."""
        self.rows += rows

    def start(self) -> None:
        """Give back the rows waiting, unless a give-back is in flight (its end wakes the relay for them)."""
        if self.rows and not self.in_flight:
            self.flush()

    def flush(self) -> None:
        """Give back the rows waiting now, beside any give-back in flight (the relay is stopping)."""
        if self.rows:
            rows, self.rows = self.rows, []
            self.in_flight.start(self._give_back(rows))

    async def _give_back(self, rows: list[OutboxRow]) -> None:
        event_ids = [row.event_id for row in rows]
        await until_done(f"clearing {len(rows)} lease(s)", lambda: store.release_leases(event_ids), self._lease_seconds)
        self._wake_claim()
