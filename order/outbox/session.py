"""The relay's own PostgreSQL session. It LISTENs for commits that wrote rows to claim (a trigger NOTIFYs)
and holds this worker's liveness lock: a lease holds only while its worker's lock does, so a dead worker's
leased rows go to the next claim, not when their lease runs out.

It needs a session of its own: through a transaction pooler (PgBouncer) point ORDER_LISTEN_DATABASE_URL at
PostgreSQL itself. Without it, the sweep still finds every row, and nothing is leased.
"""

import asyncio
import logging
import random
from collections.abc import Callable

import asyncpg

from order.outbox.store import LIVENESS_LOCK_CLASS, Lease
from order.settings import OrderSettings
from shared.amqp import backoff_delay
from shared.db import asyncpg_dsn

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"  # the trigger's (migrations 1 and 4)


class RelaySession:
    def __init__(self, settings: OrderSettings, on_notify: Callable[[], None]) -> None:
        # What a row written now may be leased with: this worker's liveness lock, while the session holds it.
        self.lease: Lease | None = None
        self._lease_seconds = settings.outbox_lease
        self._url = settings.listen_database_url
        self._on_notify = on_notify

    async def hold(self) -> None:
        """Hold the session, reconnected when dropped."""
        attempt = 0
        owner = random.randrange(1, 2**31)
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self._url), timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._on_notify())
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LIVENESS_LOCK_CLASS, owner):
                    owner = random.randrange(1, 2**31)  # another worker's (or this one's, on a session not yet ended)
                self.lease = Lease(self._lease_seconds, owner)
                attempt = 0
                await lost.wait()
            except Exception as exc:  # any failure (a refused or lost session, a bad URL): the sweep covers it
                log.warning("outbox relay session: %s: %s; reconnecting", type(exc).__name__, exc)
            finally:
                self.lease = None
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(backoff_delay(attempt))
            attempt += 1
