"""The order service's OpenAPI document, from the models in `order.schemas` that validate its requests.

Examples are model instances and the service's own exceptions (shared/openapi/declare.py): the document shows
them as the service renders them.
"""

from datetime import UTC, datetime
from decimal import Decimal

from order.customer_client import CustomerServiceUnavailable, UnknownCustomer
from order.domain import InvalidTransition
from order.idempotency import HEADER as IDEMPOTENCY_HEADER
from order.idempotency import MAX_KEY_LENGTH, REPLAYED_HEADER, KeyInFlight, KeyReused
from order.routes import access, routes
from order.schemas import (
    MAX_COUNTED_CUSTOMERS,
    ChangeStatusBody,
    CreateOrderBody,
    CustomerOrdersQuery,
    EmbeddedCustomer,
    OrderCountsOut,
    OrderCountsQuery,
    OrderCreatedOut,
    OrderIn,
    OrderOut,
    OrderQuery,
    StatusChange,
)
from order.service import OrderNotFound, TransitionRefused
from shared.http import refusal_of
from shared.openapi import (
    COMMON_OPERATIONS,
    COMMON_TAGS,
    DEV_TOKEN_URL,
    LOCATION,
    Header,
    Operation,
    build_spec,
    route_scopes,
    secure,
    unavailable,
)
from shared.pagination import Page

PLACED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ORDER = OrderOut(
    id=7,
    customer_id=1,
    product_name="Laptop",
    quantity=1,
    price=Decimal("1200.00"),
    status="created",
    created_at=PLACED_AT,
    updated_at=PLACED_AT,
)
PAID = ORDER.model_copy(update={"status": "paid", "updated_at": datetime(2026, 1, 2, 4, tzinfo=UTC)})
CREATED = OrderCreatedOut(
    **ORDER.model_dump(exclude={"total"}),
    customer=EmbeddedCustomer(id=1, name="Ada Lovelace", address="12 St James's Square, London", orders_count=3),
)
NEW_ORDER = CreateOrderBody(
    order=OrderIn(customer_id=1, product_name="Laptop", quantity=1, price=Decimal("1200.00"), status="created")
)
NOT_FOUND = ((OrderNotFound(42),), "No order with this id.")
ORDER_PAGE = (Page[OrderOut](items=[ORDER], total=1, limit=50, offset=0, next=None), "A page of orders.")
INVALID_BODY = refusal_of(CreateOrderBody, {"order": {**NEW_ORDER.order.model_dump(mode="json"), "quantity": 0}})

IDEMPOTENCY_KEY = Header(
    IDEMPOTENCY_HEADER,
    "Makes a retry safe: a repeat with the same key and body returns the first response and creates nothing. "
    "Keys are kept at least 24 hours; a rejected (4xx) request stores none.",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    example="checkout-3f2c9a4e",
)
REPLAYED = Header(
    REPLAYED_HEADER,
    "`true` when this is the stored response to an earlier request with the same Idempotency-Key.",
    {"type": "string", "enum": ["true"]},
    example="true",
)

TAGS = {"orders": "Orders and their lifecycle; every change is published as an event.", **COMMON_TAGS}
SERVERS = [
    {"url": "http://localhost:3001", "description": "`make run` on this machine (ORDER_PORT)."},
    {"url": "http://order:3001", "description": "From another container of `docker compose up`."},
]

OPERATIONS = [
    Operation(
        "POST",
        "/orders",
        "create_order",
        "Place an order for an existing customer",
        "orders",
        {
            201: (CREATED, "Created, with the customer as the customer service returned it; `Location` is its URL."),
            409: ((KeyInFlight(),), "A request with this Idempotency-Key is still in progress; retry shortly."),
            422: (
                (INVALID_BODY, UnknownCustomer(42), KeyReused()),
                "The body is invalid, the customer does not exist, or the Idempotency-Key was used with a "
                "different body.",
            ),
            503: unavailable(
                CustomerServiceUnavailable("no answer within 2s"),
                description="The customer service is down, slow or failing, the service is at capacity, or its "
                "database is unreachable; nothing was stored. Send the same request again after `Retry-After` "
                "seconds (with the same Idempotency-Key).",
            ),
        },
        "The customer is validated by calling the customer service; `order.created` is published through the "
        "outbox, so a broker outage delays the event but not the order.",
        request=NEW_ORDER,
        headers=(IDEMPOTENCY_KEY,),
        response_headers={201: (LOCATION, REPLAYED)},
    ),
    Operation(
        "GET",
        "/orders",
        "list_orders",
        "List orders, newest first",
        "orders",
        {200: ORDER_PAGE},
        "Orders, newest first, of one customer and in one status if asked. `limit` above 200 is clamped to 200; "
        "page on with `next`.",
        query=OrderQuery,
    ),
    Operation(
        "GET",
        "/orders/counts",
        "count_orders",
        "Count the orders of several customers",
        "orders",
        {200: (OrderCountsOut(counts={"1": 3, "2": 0}), "Orders held per customer id asked for.")},
        f"One query for up to {MAX_COUNTED_CUSTOMERS} customers; `python -m customer.ops reconcile` "
        "compares these with each customer's `orders_count`.",
        query=OrderCountsQuery,
    ),
    Operation(
        "GET",
        "/orders/{id}",
        "get_order",
        "Get an order",
        "orders",
        {200: (ORDER, "The order."), 404: NOT_FOUND},
        "The order, read from the order service alone (the customer is not called).",
        path_params=("id",),
    ),
    Operation(
        "PATCH",
        "/orders/{id}",
        "change_order_status",
        "Move an order along its lifecycle",
        "orders",
        {
            200: (PAID, "The order in its new status."),
            404: NOT_FOUND,
            409: (
                (TransitionRefused(InvalidTransition("delivered", "paid")),),
                "The transition is not allowed from the current status.",
            ),
            422: (
                (refusal_of(ChangeStatusBody, {"order": {"status": "lost"}}),),
                "The body is invalid (an unknown status, say); `errors` names each bad field.",
            ),
        },
        "created → paid → shipped → delivered, and created|paid → cancelled; of two racing changes at most one "
        "wins. Publishes `order.status_changed`.",
        request=ChangeStatusBody(order=StatusChange(status="paid")),
        path_params=("id",),
    ),
    Operation(
        "GET",
        "/customers/{id}/orders",
        "list_customer_orders",
        "List a customer's orders, newest first",
        "orders",
        {200: ORDER_PAGE},
        "The same as `GET /orders?customer_id={id}`; an unknown customer has an empty page.",
        query=CustomerOrdersQuery,
        path_params=("id",),
    ),
]


def openapi_spec(token_url: str = DEV_TOKEN_URL) -> dict:
    spec = build_spec(
        "Order service",
        "Orders and their lifecycle; every change is published to the `orders` exchange through an outbox "
        "([asyncapi.json](asyncapi.json), [docs/events](docs/events)).",
        OPERATIONS + COMMON_OPERATIONS,
        TAGS,
        SERVERS,
    )
    return secure(spec, route_scopes(routes, access), token_url)
