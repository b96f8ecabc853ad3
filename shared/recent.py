"""An answer computed at most once per interval however many callers ask: what an endpoint outside
admission (readiness, metrics) serves, so that no number of callers can make it cost more."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_AGE = 1.0  # seconds: probes and scrapers ask every few seconds; an answer this old is current


class Recent(Generic[T]):
    """The latest result of `compute`, made again only once it is `max_age` old. Callers that ask while
    it is being made wait for that one computation, not for one each."""

    def __init__(self, compute: Callable[[], Awaitable[T]], max_age: float = MAX_AGE) -> None:
        self.compute = compute
        self.max_age = max_age
        self._made: tuple[float, T] | None = None  # (loop time, result)
        self._making: asyncio.Task[T] | None = None

    async def get(self) -> T:
        now = asyncio.get_running_loop().time()
        if self._made is not None and now - self._made[0] < self.max_age:
            return self._made[1]
        if self._making is None:
            self._making = asyncio.create_task(self._make(), name="recent answer")
        # Shielded: a caller that gives up does not cancel the computation the others wait for.
        return await asyncio.shield(self._making)

    async def _make(self) -> T:
        try:
            result = await self.compute()
            self._made = (asyncio.get_running_loop().time(), result)
            return result
        finally:
            self._making = None
