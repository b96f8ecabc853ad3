"""A shutdown never hangs: a cancelled broker link stops wherever it was, and so does any background task."""

import asyncio
import contextlib

from shared import db
from shared.amqp import BrokerLink

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def test_a_link_whose_cancellation_a_library_swallowed_while_it_connected_stops():
    # Seen with aiormq: a cancellation that arrives while it opens the connection or declares the
    # topology can be lost; the link then sat on its new connection for ever, and the app's shutdown with it.
    declaring = asyncio.Event()

    async def swallowing_declaration(channel) -> None:
        declaring.set()
        with contextlib.suppress(asyncio.CancelledError):  # what a careless library does
            await asyncio.sleep(3600)

    link = BrokerLink(BROKER_URL, "test link", swallowing_declaration)
    task = asyncio.create_task(link.run())
    async with asyncio.timeout(10):
        await declaring.wait()
    task.cancel()
    async with asyncio.timeout(10):  # a deadline, not a measure: the bug waited for ever
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and not link.is_up


async def test_stop_tasks_stops_a_task_that_swallows_its_cancellation(monkeypatch, caplog):
    monkeypatch.setattr(db, "STOP_GRACE", 0.05)

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # what a careless library does
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    polite = asyncio.create_task(asyncio.sleep(3600), name="polite")
    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await db.stop_tasks([polite, task])
    assert task.cancelled() and polite.cancelled()
    assert "'stubborn' did not stop when cancelled" in caplog.text
