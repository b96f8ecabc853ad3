"""The consumer's breaker: open while its database is away, and the probe that tells when it is back."""

import asyncio
import logging

from customer import repository
from customer.metrics import CONSUMER_BREAKER_OPEN, CONSUMER_BREAKER_OPEN_SECONDS
from shared.amqp import backoff_delay
from shared.problems import describe

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
PROBE_BACKOFF_CAP = 10.0


class Breaker:
    """Open while the database is away; the consumer pauses while it is open."""

    def __init__(self) -> None:
        self.opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def open(self, cause: BaseException) -> None:
        self.opened_at = asyncio.get_running_loop().time()
        CONSUMER_BREAKER_OPEN.set(1)
        log.warning("consumer breaker open: the database is unavailable (%s); consumption paused", cause)

    def tick(self) -> float:
        assert self.opened_at is not None
        seconds = asyncio.get_running_loop().time() - self.opened_at
        CONSUMER_BREAKER_OPEN_SECONDS.set(seconds)
        return seconds

    def close(self) -> None:
        log.warning("consumer breaker closed: the database is back after %.1f s; consumption resumes", self.tick())
        self.opened_at = None
        CONSUMER_BREAKER_OPEN.set(0)
        CONSUMER_BREAKER_OPEN_SECONDS.set(0)

    async def database_answers(self, attempt: int) -> bool:
        """Wait out the backoff of probe number `attempt` (capped, with jitter), then ask the database once."""
        await asyncio.sleep(backoff_delay(attempt, cap=PROBE_BACKOFF_CAP))
        self.tick()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await repository.probe()
            return True
        except Exception as exc:
            log.info("consumer breaker: database still unavailable after %.0f s (%s)", self.tick(), describe(exc))
            return False
