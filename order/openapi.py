"""The order service's OpenAPI document, from the models in `order.schemas` that validate its requests."""

from order.idempotency import HEADER as IDEMPOTENCY_HEADER
from order.idempotency import MAX_KEY_LENGTH, REPLAYED_HEADER
from order.routes import access, routes
from order.schemas import (
    MAX_COUNTED_CUSTOMERS,
    ChangeStatusBody,
    CreateOrderBody,
    CustomerOrdersQuery,
    OrderCountsOut,
    OrderCountsQuery,
    OrderCreatedOut,
    OrderOut,
    OrderQuery,
)
from shared.openapi import (
    COMMON_OPERATIONS,
    DEV_TOKEN_URL,
    LOCATION,
    Header,
    Operation,
    Problem,
    build_spec,
    route_scopes,
    secure,
)
from shared.pagination import Page

NOT_FOUND = (Problem, "No order with this id.")
ORDER_PAGE = (Page[OrderOut], "A page of orders; `limit` above 200 is clamped to 200.")

IDEMPOTENCY_KEY = Header(
    IDEMPOTENCY_HEADER,
    "Makes a retry safe: a repeat with the same key and body returns the first response and creates nothing. "
    "Keys are kept at least 24 hours; a rejected (4xx) request stores none.",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
)
REPLAYED = Header(REPLAYED_HEADER, "`true` when this is the stored response to an earlier request with the key.")

OPERATIONS = [
    Operation(
        "POST",
        "/orders",
        "create_order",
        "Place an order for an existing customer",
        "orders",
        {
            201: (OrderCreatedOut, "Created, with the customer as the customer service returned it."),
            409: (Problem, "A request with this Idempotency-Key is still in progress; retry shortly."),
            422: (
                Problem,
                "The body is invalid, the customer does not exist (field `customer_id`), "
                "or the Idempotency-Key was used with a different body.",
            ),
            503: (Problem, "The customer service is down, slow or failing; nothing was stored."),
        },
        request=CreateOrderBody,
        headers=(IDEMPOTENCY_KEY,),
        response_headers={201: (LOCATION, REPLAYED)},
        description="The customer is validated by calling the customer service; `order.created` is published "
        "through the outbox, so a broker outage delays the event but not the order.",
    ),
    Operation(
        "GET",
        "/orders",
        "list_orders",
        "List orders, newest first",
        "orders",
        {200: ORDER_PAGE},
        query=OrderQuery,
    ),
    Operation(
        "GET",
        "/orders/counts",
        "count_orders",
        "Count the orders of several customers",
        "orders",
        {200: (OrderCountsOut, "Orders held per customer id asked for.")},
        query=OrderCountsQuery,
        description=f"One query for up to {MAX_COUNTED_CUSTOMERS} customers; `python -m customer.ops reconcile` "
        "compares these with each customer's `orders_count`.",
    ),
    Operation(
        "GET",
        "/orders/{id}",
        "get_order",
        "Get an order",
        "orders",
        {200: (OrderOut, "The order."), 404: NOT_FOUND},
        path_params=("id",),
    ),
    Operation(
        "PATCH",
        "/orders/{id}",
        "change_order_status",
        "Move an order along its lifecycle",
        "orders",
        {
            200: (OrderOut, "The order in its new status."),
            404: NOT_FOUND,
            409: (Problem, "The transition is not allowed from the current status, which the problem names."),
        },
        request=ChangeStatusBody,
        path_params=("id",),
        description="created → paid → shipped → delivered, and created|paid → cancelled. "
        "Publishes `order.status_changed`.",
    ),
    Operation(
        "GET",
        "/customers/{id}/orders",
        "list_customer_orders",
        "List a customer's orders, newest first",
        "orders",
        {200: ORDER_PAGE},
        query=CustomerOrdersQuery,
        path_params=("id",),
        description="The same as `GET /orders?customer_id={id}`; an unknown customer has an empty page.",
    ),
]


def openapi_spec(token_url: str = DEV_TOKEN_URL) -> dict:
    spec = build_spec(
        "Order service",
        "Orders and their lifecycle; every change is published to the `orders` exchange through an outbox.",
        OPERATIONS + COMMON_OPERATIONS,
    )
    return secure(spec, route_scopes(routes, access), token_url)
