"""The customer service's OpenAPI document, from the models in `customer.schemas` that validate its requests.

Examples are model instances (shared/openapi/declare.py): the document shows them as the service renders them.
"""

from datetime import UTC, datetime

from customer.dead_letters.openapi import DEAD_LETTER_OPERATIONS, DEAD_LETTER_TAGS
from customer.routes import access, routes
from customer.schemas import CreateCustomerBody, CustomerIn, CustomerOut, CustomerPatch, UpdateCustomerBody
from customer.service import CustomerNotFound, EmailTaken, NothingToUpdate
from shared.http import refusal_of
from shared.openapi import (
    COMMON_OPERATIONS,
    COMMON_TAGS,
    DEV_TOKEN_URL,
    LOCATION,
    Operation,
    build_spec,
    route_scopes,
    secure,
)
from shared.pagination import Page, PageParams

ADA = CustomerOut(
    id=1,
    name="Ada Lovelace",
    address="12 St James's Square, London",
    email="ada@example.org",
    orders_count=3,
    created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)
NEW_ADA = CreateCustomerBody(customer=CustomerIn(name=ADA.name, address=ADA.address, email=ADA.email))
MOVED_ADA = ADA.model_copy(update={"address": "Medellín", "updated_at": datetime(2026, 2, 1, tzinfo=UTC)})
EMAIL_TAKEN = ((EmailTaken("ada@example.org"),), "The email belongs to another customer.")
NOT_FOUND = ((CustomerNotFound(42),), "No customer with this id.")

TAGS = {"customers": "Customers, and how many orders each has placed.", **DEAD_LETTER_TAGS, **COMMON_TAGS}
SERVERS = [
    {"url": "http://localhost:3000", "description": "`make run` on this machine (CUSTOMER_PORT)."},
    {"url": "http://customer:3000", "description": "From another container of `docker compose up`."},
]

OPERATIONS = [
    Operation(
        "GET",
        "/customers",
        "list_customers",
        "List customers, newest first",
        "customers",
        {200: (Page[CustomerOut](items=[ADA], total=1, limit=50, offset=0, next=None), "A page of customers.")},
        "A page of customers, newest first. `limit` above 200 is clamped to 200; page on with `next`.",
        query=PageParams,
    ),
    Operation(
        "POST",
        "/customers",
        "create_customer",
        "Create a customer",
        "customers",
        {201: (ADA, "Created; `Location` is its URL."), 409: EMAIL_TAKEN},
        "`email` is optional but unique when given; `orders_count` starts at 0 and only events change it.",
        request=NEW_ADA,
        response_headers={201: (LOCATION,)},
    ),
    Operation(
        "GET",
        "/customers/{id}",
        "get_customer",
        "Get a customer",
        "customers",
        {200: (ADA, "The customer."), 404: NOT_FOUND},
        "The customer with its `orders_count`: the orders the service has counted from `order.created` events.",
        path_params=("id",),
    ),
    Operation(
        "PATCH",
        "/customers/{id}",
        "update_customer",
        "Change some of a customer's fields",
        "customers",
        {
            200: (MOVED_ADA, "The updated customer."),
            404: NOT_FOUND,
            409: EMAIL_TAKEN,
            422: (
                (
                    refusal_of(UpdateCustomerBody, {"customer": {"orders_count": 3}}),
                    NothingToUpdate(),
                ),
                "The body is invalid (`orders_count` is read-only, at least one field is needed); `errors` names "
                "each bad field.",
            ),
        },
        "Only the fields sent change; `email: null` removes the email.",
        request=UpdateCustomerBody(customer=CustomerPatch(address="Medellín")),
        path_params=("id",),
    ),
    Operation(
        "DELETE",
        "/customers/{id}",
        "delete_customer",
        "Delete a customer",
        "customers",
        {204: (None, "Deleted."), 404: NOT_FOUND},
        "Deletes the customer; orders already placed for them stay in the order service.",
        path_params=("id",),
    ),
]


def openapi_spec(token_url: str = DEV_TOKEN_URL) -> dict:
    spec = build_spec(
        "Customer service",
        "Customers, and how many orders each has placed (counted from `order.created` events: "
        "[asyncapi.json](asyncapi.json), [docs/events](docs/events)).",
        OPERATIONS + DEAD_LETTER_OPERATIONS + COMMON_OPERATIONS,
        TAGS,
        SERVERS,
    )
    return secure(spec, route_scopes(routes, access), token_url)
