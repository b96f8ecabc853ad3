"""The order service's housekeeping: backlog gauges, the outbox's own vacuum, expired idempotency keys.

One task per process. The gauges are cheap reads of the outbox's head; the purge runs in bounded
batches under an advisory lock, so with many instances one purges at a time (shared/housekeeping.py).
"""

import asyncio
import logging
from datetime import timedelta

from tortoise.connection import get_connection
from tortoise.timezone import now

from order.db_config import APP
from order.settings import OrderSettings
from shared.housekeeping import purge_in_batches, vacuum
from shared.metrics import OUTBOX_OLDEST_SECONDS, OUTBOX_PENDING

log = logging.getLogger(__name__)

GAUGES_EVERY = 5.0  # seconds
PURGE_EVERY = 300.0  # seconds
PURGE_BATCH = 1000

# The oldest row is the head of the primary key; the count reads only pending rows (the table holds no
# others) and the vacuum keeps their pages compact.
BACKLOG = """
SELECT (SELECT count(*) FROM outbox) AS pending,
       extract(epoch FROM now() - (SELECT created_at FROM outbox ORDER BY id LIMIT 1)) AS oldest_seconds
"""
PURGE_EXPIRED_KEYS = """
DELETE FROM idempotency_keys WHERE key IN (
    SELECT key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)
"""


async def backlog() -> tuple[int, float]:
    """Pending events and the age of the oldest, in seconds."""
    _, rows = await get_connection(APP).execute_query(BACKLOG)
    return rows[0]["pending"], float(rows[0]["oldest_seconds"] or 0)


async def purge_expired_keys(settings: OrderSettings) -> int:
    expired_before = now() - timedelta(hours=settings.idempotency_retention_hours)
    return await purge_in_batches(APP, "idempotency_keys", PURGE_EXPIRED_KEYS, [expired_before], PURGE_BATCH)


async def run_housekeeping(settings: OrderSettings) -> None:
    loop = asyncio.get_running_loop()
    last_purge = last_vacuum = loop.time()
    while True:
        await asyncio.sleep(GAUGES_EVERY)
        try:
            pending, oldest = await backlog()
            OUTBOX_PENDING.set(pending)
            OUTBOX_OLDEST_SECONDS.set(oldest)
            if loop.time() - last_vacuum >= settings.outbox_vacuum_interval:
                last_vacuum = loop.time()
                await vacuum(APP, "outbox")
            if loop.time() - last_purge >= PURGE_EVERY:
                last_purge = loop.time()
                await purge_expired_keys(settings)
        except Exception as exc:  # the database is away: all of this can wait
            log.warning("order housekeeping skipped (%s: %s)", type(exc).__name__, exc)
