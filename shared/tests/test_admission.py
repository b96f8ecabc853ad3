"""shared/admission.py's queue: slots in arrival order, a freed slot handed on, expired and cancelled waiters."""

import asyncio
import time

from shared.admission import Admission


async def taken(max_queue: int = 10, queue_timeout: float = 60.0) -> Admission:
    """A gate of one slot, which a first request holds."""
    gate = Admission(1, max_queue, queue_timeout, max_loop_lag=10.0, overload_queue_timeout=queue_timeout, burst=60.0)
    assert await gate.admit() is None
    return gate


async def waiting(gate: Admission, count: int) -> list[asyncio.Task]:
    """`count` requests queued behind the full slots, in this order."""
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(gate.admit()))
        await asyncio.sleep(0)  # it reaches the queue before the next one arrives
    return tasks


async def test_a_freed_slot_goes_to_the_oldest_waiter():
    gate = await taken()
    first, second, third = await waiting(gate, 3)
    gate.release()
    assert await first is None
    assert not second.done() and not third.done()
    gate.release()
    assert await second is None and not third.done()
    gate.release()
    assert await third is None
    gate.release()
    assert gate.in_flight == 0


async def test_waiters_past_their_wait_are_refused_and_take_no_slot():
    gate = await taken(queue_timeout=5.0)
    (old,) = await waiting(gate, 1)
    gate.refuse_expired(time.monotonic())  # not yet: it is still welcome to wait
    assert not old.done()
    gate.refuse_expired(time.monotonic() + 5.0)
    assert await old == "queue_timeout"
    gate.release()
    assert gate.in_flight == 0


async def test_a_full_queue_refuses_at_once():
    gate = await taken(max_queue=1)
    (queued,) = await waiting(gate, 1)
    assert await gate.admit() == "queue_full"
    queued.cancel()


async def test_a_cancelled_waiter_is_skipped_and_a_slot_handed_to_a_cancelled_one_is_passed_on():
    gate = await taken()
    gone, handed, last = await waiting(gate, 3)
    gone.cancel()
    await asyncio.sleep(0)
    gate.release()  # skips the cancelled one: `handed` gets the slot...
    handed.cancel()  # ...and is cancelled before it runs again
    assert await asyncio.wait_for(last, 5) is None  # the slot was passed on, not lost
    assert gone.cancelled() and handed.cancelled()
    gate.release()
    assert gate.in_flight == 0


def test_one_late_timer_after_a_stall_refuses_nothing_a_lag_that_persists_does():
    gate = Admission(1, 10, 1.0, max_loop_lag=0.05, overload_queue_timeout=1.0, burst=60.0)
    gate.observe_lag(2.0)  # the probe that spans a 2 s freeze
    gate.observe_lag(0.001)
    assert not gate.lagging
    for _ in range(3):  # a saturated loop: every probe late
        gate.observe_lag(0.08)
    assert gate.lagging
    gate.observe_lag(0.001)
    assert not gate.lagging
