from aiohttp import web

from order import idempotency, service
from order.domain import CANCELLED
from order.keys import CUSTOMERS, ORDER_IDS, OUTBOX, SETTINGS
from order.schemas import (
    ChangeStatusBody,
    CreateOrderBody,
    CustomerOrdersQuery,
    OrderCountsQuery,
    OrderOut,
    OrderQuery,
)
from shared.admission import ABANDONED, client_gone
from shared.auth.access import require_customer, require_scope, require_staff
from shared.auth.identity import bound_customer, current_actor
from shared.http import created, json_response, parse_json, parse_query, path_id
from shared.pagination import check_offset, page_response, page_total, resume
from shared.request_id import current_request_id
from shared.scopes import ORDERS_FULFIL, ORDERS_WRITE

REPLAYED = {idempotency.REPLAYED_HEADER: "true"}


async def create_order(request: web.Request) -> web.Response:
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    body = await parse_json(request, CreateOrderBody)
    require_customer(request, body.order.customer_id)
    scoped_key = idempotency.scoped(key, current_actor()) if key is not None else None
    claim = idempotency.Claim(scoped_key, body.order.model_dump_json()) if scoped_key is not None else None
    asked = service.OrderRequest(body.order, current_request_id(), claim, still_wanted=lambda: not client_gone(request))
    try:
        placed = await service.place_order(request.app[CUSTOMERS], request.app[ORDER_IDS], request.app[OUTBOX], asked)
    except service.ClientGone:
        ABANDONED.inc()
        return web.Response(status=499)  # nobody reads it
    return created(request, "order", placed.order_id, placed.body, headers=REPLAYED if placed.replayed else None)


async def list_orders(request: web.Request) -> web.Response:
    query = parse_query(request, OrderQuery)
    bound = bound_customer()
    if bound is not None:  # a customer's own token lists that customer's orders
        require_customer(request, query.customer_id if query.customer_id is not None else bound)
        query = query.model_copy(update={"customer_id": bound})
    return await _page(request, query)


async def list_customer_orders(request: web.Request) -> web.Response:
    """The original system's route: the same as GET /orders?customer_id={id}."""
    page = parse_query(request, CustomerOrdersQuery)
    return await _page(request, OrderQuery(customer_id=path_id(request), **page.model_dump(exclude_unset=True)))


async def _page(request: web.Request, query: OrderQuery) -> web.Response:
    check_offset(query, request.app[SETTINGS].page_max_offset)
    query, after = resume(query)
    if bound_customer() is not None:  # whatever the cursor said
        require_customer(request, query.customer_id)
    # One row more than the page: whether another page follows.
    orders = await service.list_orders(query.customer_id, query.status, query.limit + 1, query.offset, after)
    total = await page_total(orders, query, lambda: service.count_matching_orders(query.customer_id, query.status))
    return page_response(request, OrderOut, orders, query, total)


async def count_orders(request: web.Request) -> web.Response:
    """How many orders each of a page of customers has (what `customer.ops reconcile` compares)."""
    query = parse_query(request, OrderCountsQuery)
    counts = await service.count_orders(query.customer_id)
    return json_response({"counts": {str(customer_id): held for customer_id, held in counts.items()}})


async def get_order(request: web.Request) -> web.Response:
    order = await service.get_order(path_id(request))
    require_customer(request, order.customer_id)
    return json_response(OrderOut.model_validate(order))


async def change_order_status(request: web.Request) -> web.Response:
    """Cancelling takes orders:write (a customer may cancel their own order); paying, shipping and
    delivering take orders:fulfil. The body is validated first: the scope depends on it."""
    order_id = path_id(request)
    body = await parse_json(request, ChangeStatusBody)
    require_scope(request, ORDERS_WRITE if body.order.status == CANCELLED else ORDERS_FULFIL)
    if bound_customer() is not None:
        if body.order.status != CANCELLED:
            require_staff(request)  # a customer's own token may cancel, never pay, ship or deliver
        require_customer(request, (await service.get_order(order_id)).customer_id)
    order = await service.change_order_status(request.app[OUTBOX], order_id, body.order.status, current_request_id())
    return json_response(OrderOut.model_validate(order))
