"""shared/recent.py: however many ask at once, one computation; a new one only once the answer is old."""

import asyncio

import pytest

from shared.recent import Recent


class Counting:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        await self.release.wait()
        return self.calls


async def test_callers_asking_at_once_share_one_computation():
    compute = Counting()
    recent = Recent(compute, max_age=60)
    callers = [asyncio.create_task(recent.get()) for _ in range(50)]
    await asyncio.sleep(0)  # let every caller ask before the answer exists
    compute.release.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert await recent.get() == 1 and compute.calls == 1


async def test_an_answer_older_than_its_max_age_is_made_again():
    compute = Counting()
    compute.release.set()
    recent = Recent(compute, max_age=0)
    assert [await recent.get(), await recent.get()] == [1, 2]


async def test_a_caller_that_gives_up_does_not_cancel_the_others_answer():
    compute = Counting()
    recent = Recent(compute, max_age=60)
    leaving, staying = asyncio.create_task(recent.get()), asyncio.create_task(recent.get())
    await asyncio.sleep(0)
    leaving.cancel()
    compute.release.set()
    assert await staying == 1


async def test_a_failed_computation_is_not_kept():
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database away")
        return "up"

    recent = Recent(flaky, max_age=60)
    with pytest.raises(ConnectionError):
        await recent.get()
    assert await recent.get() == "up"
