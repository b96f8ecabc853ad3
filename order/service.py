"""Order rules and transactions. An order and its events always commit together (order/outbox/)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from tortoise.timezone import now

from order import events, repository
from order.customer_client import CustomerClient
from order.db_config import APP
from order.domain import InvalidTransition, check_transition
from order.idempotency import Claim
from order.models import Order
from order.outbox import Outbox, store
from order.repository import NewOrder, OrderIds
from order.schemas import OrderCreatedOut, OrderIn, OrderOut
from shared.db import transaction
from shared.http import to_json
from shared.pagination import Position
from shared.problems import Conflict, NotFound, problem_type
from shared.tracing import start_span

log = logging.getLogger(__name__)


class OrderNotFound(NotFound):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"Order {order_id} does not exist.")


class TransitionRefused(Conflict):
    """The lifecycle does not allow this change from the order's current status, which `detail` and `errors` name."""

    type = problem_type("transition-refused")

    def __init__(self, refused: InvalidTransition) -> None:
        super().__init__(str(refused), [{"field": "status", "message": f"current status is '{refused.current}'"}])


class ClientGone(Exception):
    """The client disconnected before the order was stored: nothing is stored, the key is released."""


@dataclass(frozen=True)
class PlacedOrder:
    order_id: int
    # The order as the API shows it on creation. Rendered here, once, because with an Idempotency-Key the
    # same bytes are stored in the statement that stores the order, and every replay returns them.
    body: bytes
    replayed: bool = False


@dataclass(frozen=True)
class OrderRequest:
    """One request to place an order: the order asked for, the request's id, its Idempotency-Key's
    claim (if it has one), and whether its client still waits for the answer."""

    order: OrderIn
    request_id: str
    claim: Claim | None = None
    still_wanted: Callable[[], bool] = lambda: True


async def place_order(
    customers: CustomerClient, order_ids: OrderIds, outbox: Outbox, asked: OrderRequest
) -> PlacedOrder:
    """Validate the customer, then store the order, its event and the key's response atomically.

    `still_wanted` is asked before the customer call and before the insert: a client that has gone
    costs no more work. The insert is one statement, so it is never stopped half-way.
    """
    claim = asked.claim
    if claim is not None:
        stored = await claim.take()
        if stored is not None:
            return PlacedOrder(orjson.loads(stored)["id"], stored, replayed=True)
    try:
        if not asked.still_wanted():
            raise ClientGone()
        customer = await customers.get_customer(asked.order.customer_id, asked.request_id)
        if not asked.still_wanted():
            raise ClientGone()
        order = new_order(await order_ids.next(), asked.order)
        body = to_json(OrderCreatedOut.model_validate({**vars(order), "customer": customer}))
        completion = claim.completion(body) if claim is not None else None
        event = events.order_created(order, asked.request_id)
        with outbox.write(event) as lease, start_span("outbox write"):
            await repository.add_order(order, event, completion, lease)
    except BaseException:
        if claim is not None:
            await claim.release()
        raise
    log.debug("order %s placed for customer %s", order.id, order.customer_id)
    return PlacedOrder(order.id, body)


def new_order(order_id: int, data: OrderIn) -> NewOrder:
    placed_at = now()
    return NewOrder(
        id=order_id,
        customer_id=data.customer_id,
        product_name=data.product_name,
        quantity=data.quantity,
        price=data.price,
        status=data.status,
        created_at=placed_at,
        updated_at=placed_at,
    )


async def get_order(order_id: int) -> Order:
    order = await repository.get_order(order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def list_orders(
    customer_id: int | None, status: str | None, limit: int, offset: int, after: Position | None
) -> list[OrderOut]:
    return await repository.list_orders(customer_id, status, limit, offset, after)


async def count_matching_orders(customer_id: int | None, status: str | None) -> int:
    return await repository.count_matching(customer_id, status)


async def count_orders(customer_ids: list[int]) -> dict[int, int]:
    return await repository.count_orders(customer_ids)


async def change_order_status(outbox: Outbox, order_id: int, new_status: str, request_id: str) -> Order:
    """The row lock makes racing transitions take turns: the second sees the first's status."""
    with outbox.write():
        async with transaction(APP) as conn:
            order = await repository.lock_order(conn, order_id)
            if order is None:
                raise OrderNotFound(order_id)
            try:
                check_transition(order.status, new_status)
            except InvalidTransition as refused:
                raise TransitionRefused(refused) from None
            previous, order.status = order.status, new_status
            await repository.save_status(conn, order)  # first: the event's occurred_at is the new updated_at
            with start_span("outbox write"):
                await store.add_event(events.status_changed(order, previous, request_id), conn)
    log.info("order %s: %s -> %s", order_id, previous, new_status)
    return order
