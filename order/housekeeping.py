"""The order service's housekeeping: backlog gauges, the outbox's own vacuum, expired idempotency keys.

One task per process. The gauges are cheap reads of the outbox's head; the purge runs in bounded
batches under an advisory lock, so with many instances one purges at a time (shared/housekeeping.py).
"""

import asyncio
import logging
from datetime import timedelta

from tortoise.timezone import now

from order import repository
from order.db_config import APP
from order.metrics import OUTBOX_OLDEST_SECONDS, OUTBOX_PENDING
from order.outbox import store
from order.settings import OrderSettings
from shared.housekeeping import vacuum

log = logging.getLogger(__name__)

GAUGES_EVERY = 5.0  # seconds
# A drained backlog leaves this many dead outbox rows or more: vacuum now, not at the next interval,
# since until then every claim steps over their index entries.
VACUUM_AFTER_DEAD_ROWS = 10_000
PURGE_EVERY = 300.0  # seconds
PURGE_BATCH = 1000


async def purge_expired_keys(settings: OrderSettings) -> int:
    """Idempotency keys past their retention: a retry that late is a new request."""
    return await repository.purge_keys(now() - timedelta(hours=settings.idempotency_retention_hours), PURGE_BATCH)


async def run_housekeeping(settings: OrderSettings) -> None:
    loop = asyncio.get_running_loop()
    last_purge = last_vacuum = loop.time()
    while True:
        await asyncio.sleep(GAUGES_EVERY)
        try:
            pending, oldest = await store.backlog()
            OUTBOX_PENDING.set(pending)
            OUTBOX_OLDEST_SECONDS.set(oldest)
            due = loop.time() - last_vacuum >= settings.outbox_vacuum_interval
            drained = pending < settings.outbox_batch_size  # (while a backlog drains, the interval does)
            if due or (drained and await store.dead_events() >= VACUUM_AFTER_DEAD_ROWS):
                last_vacuum = loop.time()
                await vacuum(APP, "outbox")
            if loop.time() - last_purge >= PURGE_EVERY:
                last_purge = loop.time()
                await purge_expired_keys(settings)
        except Exception as exc:  # the database is away: all of this can wait
            log.warning("order housekeeping skipped (%s: %s)", type(exc).__name__, exc)
