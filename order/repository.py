"""The order service's statements on orders and idempotency keys, behind names that say what they do
(the outbox's own are in order/outbox/store.py).

All of it through Tortoise: the ORM where it serves, SQL on Tortoise's connection where one statement
must do what the ORM would do in several (placing an order with its event) or where the ORM's cost
shows (a page of a list, read straight into the contract's OrderOut). Callers never see which.
"""

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.timezone import now

from order.db_config import APP
from order.events import OutboxRow
from order.models import IdempotencyKey, Order
from order.outbox.store import Lease
from order.schemas import OrderOut
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


ORDER_COLUMNS = "id, customer_id, product_name, quantity, price, status, created_at, updated_at"


def orders_page(customer_id: int | None, status: str | None, after: Position | None) -> tuple[str, list]:
    """The statement of a page, newest first, and the values of its filters: it takes the limit ($1) and the
    offset ($2), then those values. After a previous page's last order, the position is a row comparison
    on (created_at, id): an index scan starts right at it, so a deep page reads only its own rows (each
    filter has an index in this order)."""
    values: list = []

    def placeholder(value: object) -> str:
        values.append(value)
        return f"${len(values) + 2}"

    conditions = []
    if customer_id is not None:
        conditions.append(f"customer_id = {placeholder(customer_id)}")
    if status is not None:
        conditions.append(f"status = {placeholder(status)}")
    if after is not None:
        created_at, order_id = after
        conditions.append(f"(created_at, id) < ({placeholder(created_at)}, {placeholder(order_id)})")
    where = " AND ".join(conditions) or "TRUE"
    sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE {where} ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
    return sql, values


# Read a page in its index's order whatever the statistics say: without them (a table never analyzed, as
# autovacuum off leaves it) the planner takes every row of a status through a bitmap and sorts them all
# for any page of a status but its first. Other lists read in index order without it, and the setting
# needs a transaction of its own.
READ_IN_INDEX_ORDER = "SET LOCAL enable_sort = off"


async def list_orders(
    customer_id: int | None, status: str | None, limit: int, offset: int, after: Position | None
) -> list[OrderOut]:
    sql, values = orders_page(customer_id, status, after)
    if status is not None and (offset or after is not None):
        async with transaction(APP) as conn:
            await conn.execute_script(READ_IN_INDEX_ORDER)
            rows = await conn.execute_query_dict(sql, [limit, offset, *values])
    else:
        rows = await db(APP).execute_query_dict(sql, [limit, offset, *values])
    return [OrderOut.model_validate(row) for row in rows]


async def count_matching(customer_id: int | None, status: str | None) -> int:
    return await _matching(customer_id, status).count()


async def count_orders(customer_ids: list[int]) -> dict[int, int]:
    """Orders held per customer, for the customers asked (0 for those with none); one index scan each."""
    _, rows = await db(APP).execute_query(
        "SELECT customer_id, count(*) AS held FROM orders WHERE customer_id = ANY($1::int[]) GROUP BY customer_id",
        [customer_ids],
    )
    return {**dict.fromkeys(customer_ids, 0), **{row["customer_id"]: row["held"] for row in rows}}


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
