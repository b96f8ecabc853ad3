"""The hot path: a new order's event, committed with a lease to this process, is handed to its relay
after the commit, published from memory at once and deleted by its event id after the broker's confirm:
no claim, no transaction, one DELETE per batch. The lease keeps every other relay's claim off the row
while this worker's liveness lock is held (order/outbox/session.py).
"""

import asyncio
import logging

from aiormq.abc import AbstractChannel

from order.db_config import APP
from order.events import OutboxRow
from order.outbox.claims import Claims
from order.outbox.give_back import LeaseReturns
from order.outbox.in_flight import MAX_BATCHES_IN_FLIGHT, InFlight
from order.outbox.publisher import EventPublisher, settle
from order.outbox.waiting import named, until_done
from order.settings import OrderSettings
from shared.db import db

log = logging.getLogger(__name__)


class HandOver:
    def __init__(
        self,
        settings: OrderSettings,
        publisher: EventPublisher,
        claims: Claims,
        returns: LeaseReturns,
        wakeup: asyncio.Event,
    ) -> None:
        self.rows: list[OutboxRow] = []  # handed over, not yet sent
        self.in_flight = InFlight(wakeup)
        self._batch_size = settings.outbox_batch_size
        self._lease_seconds = settings.outbox_lease
        self._publisher = publisher
        self._claims = claims
        self._returns = returns
        self._wakeup = wakeup
        self._claims_before = 0  # how many claims had started when the first of `rows` came

    def add(self, row: OutboxRow) -> None:
        """A row this process committed with a lease: publish it now, without a claim."""
        if not self.rows:
            self._claims_before = self._claims.started
        self.rows.append(row)
        self._wakeup.set()

    def start_if_due(self, channel: AbstractChannel) -> None:
        """Send a batch of the rows waiting if none is in flight (a batch takes all that came meanwhile), or
        if enough wait to fill one beside those in flight."""
        if self.rows and (
            not self.in_flight or (len(self.rows) >= self._batch_size and len(self.in_flight) < MAX_BATCHES_IN_FLIGHT)
        ):
            claims_before = self._claims_before
            rows = self.take(self._batch_size)
            self.in_flight.start(self._send(channel, rows, claims_before))

    def take(self, limit: int | None = None) -> list[OutboxRow]:
        """The rows handed over (up to `limit`)."""
        rows, self.rows = self.rows[:limit], self.rows[limit:] if limit else []
        return rows

    async def _send(self, channel: AbstractChannel, rows: list[OutboxRow], claims_before: int) -> None:
        try:
            confirmed = await self._publisher.publish(channel, rows)
        except Exception as exc:
            log.warning("outbox relay: %d event(s) not published (%s: %s); back to the claim", len(rows), *named(exc))
            self._returns.add(rows)  # the relay's next turn gives them back (this task's end wakes it)
            return
        # Published: if the rows stayed, they would go out again when their lease runs out.
        await until_done(
            f"deleting {len(rows)} published event(s)", lambda: settle(db(APP), rows, confirmed), self._lease_seconds
        )
        if self._claims.started != claims_before:
            self._claims.want()  # a claim since they were handed over may have left a later event of their orders
