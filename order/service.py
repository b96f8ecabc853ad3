"""Order rules and transactions. An order and its events always commit together (the outbox)."""

import logging
from collections.abc import Callable

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


async def place_order(
    customers: CustomerClient, data: OrderIn, request_id: str, wake_relay: WakeRelay,
    idempotency_key: str | None = None,
) -> tuple[int, dict | bytes]:
    """Validate the customer, then store the order, its event and the key's response in one transaction.

    Returns the status and the body: a dict for a new order, the stored bytes for a replay.
    """
    if idempotency_key is not None:
        replay = await idempotency.claim(idempotency_key, idempotency.fingerprint(data.model_dump_json()))
        if replay is not None:
            return replay.status, replay.body
    try:
        customer = await customers.get_customer(data.customer_id, request_id)
        async with transaction(APP) as conn:
            order = await Order.create(**data.model_dump(), using_db=conn)
            await events.order_created(order, request_id).save(using_db=conn)
            body = render_created_order(order, customer)
            if idempotency_key is not None:
                await idempotency.complete(idempotency_key, 201, body, using_db=conn)
    except BaseException:
        if idempotency_key is not None:
            await idempotency.release(idempotency_key)
        raise
    wake_relay()
    log.info("order %s placed for customer %s", order.id, order.customer_id)
    return 201, body


async def get_order(order_id: int) -> Order:
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def list_orders(query: OrderQuery) -> tuple[list[Order], int]:
    filters = {name: value for name, value in (("customer_id", query.customer_id), ("status", query.status))
               if value is not None}
    orders = Order.filter(**filters)
    total = await orders.count()
    if query.offset >= total:
        return [], total
    return await orders.order_by("-created_at", "-id").offset(query.offset).limit(query.limit), total


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
