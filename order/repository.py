"""Every statement the order service sends to its database, behind names that say what they do.

All of it through Tortoise: the ORM where it serves, SQL on Tortoise's connection where one statement
must do what the ORM would do in several (placing an order with its event, the relay's claim). Both
take and return the models' values, so callers never see which.
"""

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.timezone import now

from order.db_config import APP
from order.events import OutboxRow
from order.models import IdempotencyKey, Order, OutboxEvent
from shared.db import db, transaction
from shared.housekeeping import purge_in_batches
from shared.pagination import Position

# --- orders -------------------------------------------------------------------------------------------------


class OrderIds:
    """Order ids from the sequence, a block at a time (as Hibernate's pooled optimizer does): one round
    trip per block instead of one per order. Ids stay unique; with several workers they interleave,
    which is why lists sort by creation time first."""

    BLOCK = 20

    def __init__(self) -> None:
        self._ids: deque[int] = deque()
        self._refill = asyncio.Lock()

    async def next(self) -> int:
        while not self._ids:
            async with self._refill:
                if not self._ids:
                    _, rows = await db(APP).execute_query(
                        "SELECT nextval(pg_get_serial_sequence('orders', 'id')) FROM generate_series(1, $1)",
                        [self.BLOCK],
                    )
                    self._ids.extend(row[0] for row in rows)
        return self._ids.popleft()


@dataclass(frozen=True)
class NewOrder:
    """A new order as add_order inserts it: a plain record, since an insert by SQL needs no Order model."""

    id: int
    customer_id: int
    product_name: str
    quantity: int
    price: Decimal
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class KeyCompletion:
    """What an Idempotency-Key stores once its order is placed: the response a replay returns."""

    key: str
    status: int
    response: str


# The hot path in one statement, so one round trip and one implicit transaction: the order, its
# outbox row and (with an Idempotency-Key) the stored response commit together or not at all.
INSERT_ORDER_AND_EVENT = """
WITH new_order AS (
    INSERT INTO orders (id, customer_id, product_name, quantity, price, status, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
), new_event AS (
    INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts, trace_context,
                        leased_until, leased_by, actor)
    VALUES ($8, $9, $1, $10, $11, $7, 0, $12, now() + $16::float8 * interval '1 second', $17, $18)
)
UPDATE idempotency_keys SET status_code = $13, response = $15 WHERE key = $14
"""


class Lease(NamedTuple):
    """An outbox row reserved for one worker's relay: for `seconds`, and only while the worker holds its
    liveness lock `owner` (order/outbox/session.py)."""

    seconds: float
    owner: int


# The liveness locks are session advisory locks (LIVENESS_LOCK_CLASS, owner): pg_locks shows each as
# classid = the class, objid = the owner, objsubid = 2.
LIVENESS_LOCK_CLASS = 0x6F726472  # "ordr"


async def add_order(order: NewOrder, event: OutboxRow, completion: KeyCompletion | None, lease: Lease | None) -> None:
    """Store a new order with its event (and its key's response) atomically; the event leased to this
    process's relay (None: for any relay to claim)."""
    await db(APP).execute_query(
        INSERT_ORDER_AND_EVENT,
        [
            order.id,
            order.customer_id,
            order.product_name,
            order.quantity,
            order.price,
            order.status,
            order.created_at,
            event.event_id,
            event.event_type,
            event.payload,
            event.request_id,
            event.trace_context,
            *((completion.status, completion.key, completion.response) if completion else (None, None, None)),
            *(lease if lease else (None, None)),
            event.actor,
        ],
    )


async def get_order(order_id: int) -> Order | None:
    return await Order.get_or_none(id=order_id)


async def lock_order(conn: BaseDBAsyncClient, order_id: int) -> Order | None:
    """The order, locked until the transaction ends: racing status changes take turns."""
    return await Order.select_for_update().using_db(conn).get_or_none(id=order_id)


async def save_status(conn: BaseDBAsyncClient, order: Order) -> None:
    """Write the order's new status; its `updated_at` is set now (the event's `occurred_at` comes from it)."""
    await order.save(using_db=conn, update_fields=["status", "updated_at"])


def _matching(customer_id: int | None, status: str | None) -> QuerySet[Order]:
    orders = Order.all()
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    if status is not None:
        orders = orders.filter(status=status)
    return orders


def orders_page(
    customer_id: int | None, status: str | None, limit: int, offset: int, after: Position | None
) -> QuerySet[Order]:
    """Newest first, from `offset`, or after the position of a previous page's last order.

    The position as a range on created_at, then ties broken by id: an index scan starts right at it, so a
    deep page reads only its own rows (each filter has an index in this order)."""
    orders = _matching(customer_id, status)
    if after is not None:
        created_at, order_id = after
        orders = orders.filter(Q(created_at__lt=created_at) | Q(id__lt=order_id), created_at__lte=created_at)
    return orders.order_by("-created_at", "-id").offset(offset).limit(limit)


# Read a page in its index's order whatever the statistics say: without them (a table never analyzed, as
# autovacuum off leaves it) the planner may take every row of a status through a bitmap and sort them
# all. One customer's orders are few: sorting them costs less than the transaction this setting needs.
READ_IN_INDEX_ORDER = "SET LOCAL enable_sort = off"


async def list_orders(
    customer_id: int | None, status: str | None, limit: int, offset: int, after: Position | None
) -> list[Order]:
    page = orders_page(customer_id, status, limit, offset, after)
    if customer_id is not None:
        return await page
    async with transaction(APP) as conn:
        await conn.execute_script(READ_IN_INDEX_ORDER)
        return await page.using_db(conn)


async def count_matching(customer_id: int | None, status: str | None) -> int:
    return await _matching(customer_id, status).count()


async def count_orders(customer_ids: list[int]) -> dict[int, int]:
    """Orders held per customer, for the customers asked (0 for those with none); one index scan each."""
    _, rows = await db(APP).execute_query(
        "SELECT customer_id, count(*) AS held FROM orders WHERE customer_id = ANY($1::int[]) GROUP BY customer_id",
        [customer_ids],
    )
    return {**dict.fromkeys(customer_ids, 0), **{row["customer_id"]: row["held"] for row in rows}}


# --- the outbox ---------------------------------------------------------------------------------------------

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


# --- idempotency keys ---------------------------------------------------------------------------------------


async def insert_key(key: str, fingerprint: str) -> bool:
    """Claim a key; False if it exists (the primary key decides races)."""
    try:
        await IdempotencyKey.create(key=key, fingerprint=fingerprint)
    except IntegrityError:
        return False
    return True


async def get_key(key: str) -> IdempotencyKey | None:
    return await IdempotencyKey.get_or_none(key=key)


async def take_over_key(key: IdempotencyKey, abandoned_before: datetime) -> bool:
    """Claim an unfinished key whose request started before `abandoned_before`; False if another did."""
    return bool(
        await IdempotencyKey.filter(
            key=key.key, status_code=None, created_at=key.created_at, created_at__lt=abandoned_before
        ).update(created_at=now())
    )


async def delete_unfinished_key(key: str) -> None:
    await IdempotencyKey.filter(key=key, status_code=None).delete()


PURGE_EXPIRED_KEYS = """
DELETE FROM idempotency_keys WHERE key IN (
    SELECT key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)
"""


async def purge_keys(created_before: datetime, batch: int) -> int:
    return await purge_in_batches(APP, "idempotency_keys", PURGE_EXPIRED_KEYS, [created_before], batch)
