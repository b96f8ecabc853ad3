from aiohttp import web

from order import idempotency, service
from order.keys import CUSTOMERS, ORDER_IDS, OUTBOX
from order.schemas import (
    ChangeStatusBody,
    CreateOrderBody,
    CustomerOrdersQuery,
    OrderCountsQuery,
    OrderQuery,
    render_order,
)
from shared.admission import ABANDONED, client_gone
from shared.http import created, json_response, parse_json, parse_query, path_id
from shared.pagination import page_of
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
            request.app[OUTBOX],
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
    return await _page(parse_query(request, OrderQuery))


async def list_customer_orders(request: web.Request) -> web.Response:
    """The original system's route: the same as GET /orders?customer_id={id}."""
    page = parse_query(request, CustomerOrdersQuery)
    return await _page(OrderQuery(customer_id=path_id(request), **page.model_dump()))


async def _page(query: OrderQuery) -> web.Response:
    orders, total = await service.list_orders(query.customer_id, query.status, query.limit, query.offset)
    return json_response(page_of([render_order(order) for order in orders], total, query))


async def count_orders(request: web.Request) -> web.Response:
    """How many orders each of a page of customers has (what `customer.ops reconcile` compares)."""
    query = parse_query(request, OrderCountsQuery)
    counts = await service.count_orders(query.customer_id)
    return json_response({"counts": {str(customer_id): held for customer_id, held in counts.items()}})


async def get_order(request: web.Request) -> web.Response:
    return json_response(render_order(await service.get_order(path_id(request))))


async def change_order_status(request: web.Request) -> web.Response:
    order_id = path_id(request)
    body = await parse_json(request, ChangeStatusBody)
    order = await service.change_order_status(request.app[OUTBOX], order_id, body.order.status, current_request_id())
    return json_response(render_order(order))
