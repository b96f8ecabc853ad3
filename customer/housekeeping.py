"""The customer service's housekeeping: applied event ids leave after the deduplication window, dead
letters and their audit after DEAD_LETTER_RETENTION_DAYS (their bodies hold personal data).

The purge runs in bounded batches under an advisory lock, so with many instances one purges at a
time (shared/housekeeping.py); a vacuum after it gives the space back to new ids.
"""

import asyncio
import logging
from datetime import timedelta

from tortoise.timezone import now

from customer import repository
from customer.db_config import APP
from customer.dead_letters import repository as dead_letter_repository
from customer.settings import CustomerSettings
from shared.housekeeping import vacuum

log = logging.getLogger(__name__)

PURGE_EVERY = 300.0  # seconds
PURGE_BATCH = 5000


async def purge_processed_events(settings: CustomerSettings) -> int:
    before = now() - timedelta(hours=settings.processed_events_retention_hours)
    purged = await repository.purge_processed_events(before, PURGE_BATCH)
    if purged:
        await vacuum(APP, "processed_events")
    return purged


async def purge_dead_letters(settings: CustomerSettings) -> int:
    before = now() - timedelta(days=settings.dead_letter_retention_days)
    return await dead_letter_repository.purge_dead_letters(before, PURGE_BATCH)


async def run_housekeeping(settings: CustomerSettings) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY)
        try:
            await purge_processed_events(settings)
            await purge_dead_letters(settings)
        except Exception as exc:  # the database is away: the purge can wait
            log.warning("customer housekeeping skipped (%s: %s)", type(exc).__name__, exc)
