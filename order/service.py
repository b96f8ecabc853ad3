"""Order rules and transactions. An order and its events always commit together (the outbox)."""

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from tortoise.connection import get_connection
from tortoise.timezone import now

from order import events, idempotency
from order.customer_client import CustomerClient
from order.db_config import APP
from order.domain import check_transition
from order.models import Order
from order.schemas import OrderIn, OrderQuery, render_created_order
from shared.db import transaction
from shared.problems import NotFound

log = logging.getLogger(__name__)

WakeRelay = Callable[[], None]


class OrderNotFound(NotFound):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"Order {order_id} does not exist.")


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
                    _, rows = await get_connection(APP).execute_query(
                        "SELECT nextval(pg_get_serial_sequence('orders', 'id')) FROM generate_series(1, $1)",
                        [self.BLOCK],
                    )
                    self._ids.extend(row[0] for row in rows)
        return self._ids.popleft()


@dataclass(frozen=True)
class PlacedOrder:
    status: int
    order_id: int
    body: bytes  # the response, byte for byte what a replay of its Idempotency-Key returns
    replayed: bool = False


class ClientGone(Exception):
    """The client disconnected before the order was stored: nothing is stored, the key is released."""


async def place_order(
    customers: CustomerClient, order_ids: OrderIds, data: OrderIn, request_id: str, wake_relay: WakeRelay,
    idempotency_key: str | None = None, still_wanted: Callable[[], bool] = lambda: True,
) -> PlacedOrder:
    """Validate the customer, then store the order, its event and the key's response atomically.

    `still_wanted` is asked before the customer call and before the insert: a client that has gone
    costs no more work. The insert is one statement, so it is never stopped half-way.
    """
    if idempotency_key is not None:
        done = await idempotency.claim(idempotency_key, idempotency.fingerprint(data.model_dump_json()))
        if done is not None:
            body = done.response.encode()
            return PlacedOrder(done.status_code, orjson.loads(body)["id"], body, replayed=True)
    try:
        if not still_wanted():
            raise ClientGone()
        customer = await customers.get_customer(data.customer_id, request_id)
        if not still_wanted():
            raise ClientGone()
        order = Order(id=await order_ids.next(), **data.model_dump(), created_at=now())
        order.updated_at = order.created_at
        event = events.order_created(order, request_id)
        body = orjson.dumps(render_created_order(order, customer))
        await get_connection(APP).execute_query(INSERT_ORDER_AND_EVENT, [
            order.id, order.customer_id, order.product_name, order.quantity, order.price, order.status,
            order.created_at, event.event_id, event.event_type, event.payload, event.request_id,
            idempotency_key, body.decode() if idempotency_key is not None else None,
        ])
    except BaseException:
        if idempotency_key is not None:
            await idempotency.release(idempotency_key)
        raise
    wake_relay()
    log.debug("order %s placed for customer %s", order.id, order.customer_id)
    return PlacedOrder(201, order.id, body)


# The hot path in one statement, so one round trip and one implicit transaction: the order, its
# outbox row and (with an Idempotency-Key) the stored response commit together or not at all.
INSERT_ORDER_AND_EVENT = """
WITH new_order AS (
    INSERT INTO orders (id, customer_id, product_name, quantity, price, status, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
), new_event AS (
    INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts)
    VALUES ($8, $9, $1, $10, $11, $7, 0)
)
UPDATE idempotency_keys SET status_code = 201, response = $13 WHERE key = $12
"""


async def get_order(order_id: int) -> Order:
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


ORDER_FIELDS = ("id", "customer_id", "product_name", "quantity", "price", "status", "created_at", "updated_at")


async def list_orders(query: OrderQuery) -> tuple[list[dict], int]:
    """A page and the total in one plain query (a list per customer is read often); only the filters
    given appear in the SQL, so each combination gets a plan that uses its index."""
    filters = [(column, value) for column, value in (("customer_id", query.customer_id), ("status", query.status))
               if value is not None]
    where = " AND ".join(f"{column} = ${n}" for n, (column, _) in enumerate(filters, 1)) or "TRUE"
    values = [value for _, value in filters]
    n = len(values)
    connection = get_connection(APP)
    _, rows = await connection.execute_query(
        f"SELECT {', '.join(ORDER_FIELDS)}, count(*) OVER () AS matching FROM orders WHERE {where} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
        [*values, query.limit, query.offset],
    )
    if rows:
        return [{field: row[field] for field in ORDER_FIELDS} for row in rows], rows[0]["matching"]
    if query.offset == 0:
        return [], 0
    _, counted = await connection.execute_query(f"SELECT count(*) FROM orders WHERE {where}", values)
    return [], counted[0][0]  # past the end: the page is empty, the total still true


async def change_order_status(order_id: int, new_status: str, request_id: str, wake_relay: WakeRelay) -> Order:
    """The row lock makes racing transitions take turns: the second sees the first's status."""
    async with transaction(APP) as conn:
        order = await Order.select_for_update().using_db(conn).get_or_none(id=order_id)
        if order is None:
            raise OrderNotFound(order_id)
        check_transition(order.status, new_status)
        previous, order.status = order.status, new_status
        await order.save(using_db=conn, update_fields=["status", "updated_at"])
        await events.status_changed(order, previous, request_id).save(using_db=conn)
    wake_relay()
    log.info("order %s: %s -> %s", order_id, previous, new_status)
    return order
