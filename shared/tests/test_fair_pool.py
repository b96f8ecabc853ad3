"""The database pool serves connections first come, first served: no request waits behind later ones."""

import asyncio
import itertools

import asyncpg

from shared.fair_pool import FairPool

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def grant_order(pool) -> list[int]:
    """Ten tasks asking for one of two connections twenty times each: the tickets in the order granted."""
    asked, granted = itertools.count(), []

    async def user() -> None:
        for _ in range(20):
            ticket = next(asked)
            connection = await pool.acquire()
            granted.append(ticket)
            await connection.fetchval("SELECT 1")
            await pool.release(connection)

    await asyncio.gather(*(user() for _ in range(10)))
    return granted


async def test_connections_are_granted_in_the_order_they_were_asked_for():
    raw = await asyncpg.create_pool(DSN, min_size=2, max_size=2)
    try:
        granted = await grant_order(FairPool(raw, 2))
    finally:
        await raw.close()
    # asyncpg's pool alone fails this nine runs in ten: a task it wakes finds the connection taken by
    # a newcomer and queues again behind it.
    assert granted == sorted(granted)
