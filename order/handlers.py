from aiohttp import web

from order import idempotency, service
from order.keys import CUSTOMERS, ORDER_IDS, RELAY
from order.schemas import (
    ChangeStatusBody,
    CreateOrderBody,
    CustomerOrdersQuery,
    OrderQuery,
    render_order,
    render_order_row,
)
from shared.admission import ABANDONED, client_gone
from shared.http import json_response, parse_json, parse_query, path_id
from shared.request_id import current_request_id


async def create_order(request: web.Request) -> web.Response:
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    body = await parse_json(request, CreateOrderBody)
    try:
        placed = await service.place_order(
            request.app[CUSTOMERS], request.app[ORDER_IDS], body.order, current_request_id(), request.app[RELAY].wake,
            idempotency_key=key, still_wanted=lambda: not client_gone(request),
        )
    except service.ClientGone:
        ABANDONED.inc()
        return web.Response(status=499)  # nobody reads it
    headers = {"Location": str(request.app.router["order"].url_for(id=str(placed.order_id)))}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(body=placed.body, status=placed.status, content_type="application/json", headers=headers)


async def list_orders(request: web.Request) -> web.Response:
    query = parse_query(request, OrderQuery)
    return await _page(query)


async def list_customer_orders(request: web.Request) -> web.Response:
    """The original system's route: the same as GET /orders?customer_id={id}."""
    page = parse_query(request, CustomerOrdersQuery)
    return await _page(OrderQuery(customer_id=path_id(request), **page.model_dump()))


async def _page(query: OrderQuery) -> web.Response:
    orders, total = await service.list_orders(query)
    return json_response({"items": [render_order_row(o) for o in orders], "total": total,
                          "limit": query.limit, "offset": query.offset})


async def get_order(request: web.Request) -> web.Response:
    return json_response(render_order(await service.get_order(path_id(request))))


async def change_order_status(request: web.Request) -> web.Response:
    order_id = path_id(request)
    body = await parse_json(request, ChangeStatusBody)
    order = await service.change_order_status(
        order_id, body.order.status, current_request_id(), request.app[RELAY].wake
    )
    return json_response(render_order(order))
