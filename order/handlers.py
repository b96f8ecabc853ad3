from aiohttp import web

from order import idempotency, service
from order.keys import CUSTOMERS, ORDER_IDS, RELAY, SETTINGS
from order.schemas import (
    ChangeStatusBody,
    CreateOrderBody,
    CustomerOrdersQuery,
    OrderCountsQuery,
    OrderOut,
    OrderQuery,
)
from shared.admission import ABANDONED, client_gone
from shared.http import created, json_response, parse_json, parse_query, path_id
from shared.pagination import check_offset, page_response, resume
from shared.request_id import current_request_id

REPLAYED = {idempotency.REPLAYED_HEADER: "true"}


async def create_order(request: web.Request) -> web.Response:
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    body = await parse_json(request, CreateOrderBody)
    claim = idempotency.Claim(key, body.order.model_dump_json()) if key is not None else None
    try:
        placed = await service.place_order(
            request.app[CUSTOMERS],
            request.app[ORDER_IDS],
            request.app[RELAY],
            body.order,
            current_request_id(),
            claim=claim,
            still_wanted=lambda: not client_gone(request),
        )
    except service.ClientGone:
        ABANDONED.inc()
        return web.Response(status=499)  # nobody reads it
    return created(request, "order", placed.order_id, placed.body, headers=REPLAYED if placed.replayed else None)


async def list_orders(request: web.Request) -> web.Response:
    return await _page(request, parse_query(request, OrderQuery))


async def list_customer_orders(request: web.Request) -> web.Response:
    """The original system's route: the same as GET /orders?customer_id={id}."""
    page = parse_query(request, CustomerOrdersQuery)
    return await _page(request, OrderQuery(customer_id=path_id(request), **page.model_dump(exclude_unset=True)))


async def _page(request: web.Request, query: OrderQuery) -> web.Response:
    check_offset(query, request.app[SETTINGS].page_max_offset)
    query, after = resume(query)
    # One row more than the page: whether another page follows.
    orders = await service.list_orders(query.customer_id, query.status, query.limit + 1, query.offset, after)
    total = await service.count_matching_orders(query.customer_id, query.status) if query.count else None
    return page_response(request, OrderOut, orders, query, total)


async def count_orders(request: web.Request) -> web.Response:
    """How many orders each of a page of customers has (what `customer.ops reconcile` compares)."""
    query = parse_query(request, OrderCountsQuery)
    counts = await service.count_orders(query.customer_id)
    return json_response({"counts": {str(customer_id): held for customer_id, held in counts.items()}})


async def get_order(request: web.Request) -> web.Response:
    return json_response(OrderOut.model_validate(await service.get_order(path_id(request))))


async def change_order_status(request: web.Request) -> web.Response:
    order_id = path_id(request)
    body = await parse_json(request, ChangeStatusBody)
    order = await service.change_order_status(request.app[RELAY], order_id, body.order.status, current_request_id())
    return json_response(OrderOut.model_validate(order))
