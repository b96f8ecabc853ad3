"""Every statement on the outbox table but a new order's, which stores the order and its event in one
(order/repository.py `add_order`): SQL on Tortoise's connection where one statement must do what the
ORM would do in several (the relay's claim)."""

from typing import NamedTuple
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.timezone import now

from order.db_config import APP
from order.events import OutboxRow
from order.models import OutboxEvent
from shared.db import db


class Lease(NamedTuple):
    """An outbox row reserved for one worker's relay: for `seconds`, and only while the worker holds its
    liveness lock `owner` (order/outbox/session.py)."""

    seconds: float
    owner: int


# The liveness locks are session advisory locks (LIVENESS_LOCK_CLASS, owner): pg_locks shows each as
# classid = the class, objid = the owner, objsubid = 2.
LIVENESS_LOCK_CLASS = 0x6F726472  # "ordr"


# The claim, in two steps the planner cannot reorder: the first `$1` rows nobody else holds or leases (an
# index scan of the primary key from its head: the only plan for ORDER BY id LIMIT on a table of pending
# rows), then, per claimed row, one probe of (order_id, id) for an earlier pending event of its order,
# leased or not. A scalar subquery is always run per row (a NOT EXISTS could become an anti join over the
# backlog). A lease holds while it has not run out and its worker's liveness lock is held (the set of
# live owners is read once per claim).
CLAIM_BATCH = f"""
WITH live AS MATERIALIZED (
    SELECT objid::bigint AS owner FROM pg_locks
    WHERE locktype = 'advisory' AND classid = {LIVENESS_LOCK_CLASS} AND objsubid = 2 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
), claimed AS MATERIALIZED (
    SELECT id, order_id, event_id, event_type, payload, request_id, trace_context, actor FROM outbox
    WHERE leased_until IS NULL OR leased_until < now() OR leased_by NOT IN (SELECT owner FROM live)
    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
SELECT event_id, event_type, order_id, payload, request_id, trace_context, actor FROM claimed c
WHERE c.id = (SELECT min(p.id) FROM outbox p WHERE p.order_id = c.order_id)
ORDER BY id
"""


async def claim_events(conn: BaseDBAsyncClient, limit: int) -> list[OutboxRow]:
    """Up to `limit` pending events nobody else holds or leases, locked until `conn`'s transaction ends; an
    event whose order has an earlier one pending is left for later, so each order's events go out in order."""
    _, rows = await conn.execute_query(CLAIM_BATCH, [limit])
    return [OutboxRow(**row) for row in rows]


async def delete_events(conn: BaseDBAsyncClient, event_ids: list[UUID]) -> None:
    await conn.execute_query("DELETE FROM outbox WHERE event_id = ANY($1::uuid[])", [event_ids])


async def count_refusal(conn: BaseDBAsyncClient, event_ids: list[UUID]) -> None:
    """The broker refused these: they stay pending, for any relay's claim."""
    await conn.execute_query(
        "UPDATE outbox SET attempts = attempts + 1, leased_until = NULL WHERE event_id = ANY($1::uuid[])", [event_ids]
    )


async def release_leases(event_ids: list[UUID]) -> None:
    """The leasing process could not publish these: any relay may claim them now."""
    await db(APP).execute_query("UPDATE outbox SET leased_until = NULL WHERE event_id = ANY($1::uuid[])", [event_ids])


INSERT_EVENT = """
INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts, trace_context, actor)
VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)
"""


async def add_event(event: OutboxRow, conn: BaseDBAsyncClient | None = None) -> None:
    await (conn or db(APP)).execute_query(
        INSERT_EVENT,
        [
            event.event_id,
            event.event_type,
            event.order_id,
            event.payload,
            event.request_id,
            now(),
            event.trace_context,
            event.actor,
        ],
    )


async def has_pending_events(order_id: int) -> bool:
    return await OutboxEvent.filter(order_id=order_id).exists()


# The oldest row is the head of the primary key; the count reads only pending rows (the table holds no
# others) and the vacuum keeps their pages compact.
BACKLOG = """
SELECT (SELECT count(*) FROM outbox) AS pending,
       extract(epoch FROM now() - (SELECT created_at FROM outbox ORDER BY id LIMIT 1)) AS oldest_seconds
"""


async def dead_events() -> int:
    """Deleted outbox rows not yet vacuumed away, as PostgreSQL's statistics count them."""
    _, rows = await db(APP).execute_query(
        "SELECT coalesce((SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'outbox'::regclass), 0) AS dead"
    )
    return rows[0]["dead"]


async def backlog() -> tuple[int, float]:
    """Pending events and the age of the oldest, in seconds."""
    _, rows = await db(APP).execute_query(BACKLOG)
    return rows[0]["pending"], float(rows[0]["oldest_seconds"] or 0)
