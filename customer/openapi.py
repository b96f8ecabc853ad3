"""The customer service's OpenAPI document, from the models in `customer.schemas` that validate its requests."""

from customer.routes import access, routes
from customer.schemas import CreateCustomerBody, CustomerOut, UpdateCustomerBody
from shared.openapi import (
    COMMON_OPERATIONS,
    DEV_TOKEN_URL,
    LOCATION,
    Operation,
    Problem,
    build_spec,
    route_scopes,
    secure,
)
from shared.pagination import Page, PageParams

EMAIL_TAKEN = (Problem, "The email belongs to another customer (field `email`).")
NOT_FOUND = (Problem, "No customer with this id.")

OPERATIONS = [
    Operation(
        "GET",
        "/customers",
        "list_customers",
        "List customers, newest first",
        "customers",
        {200: (Page[CustomerOut], "A page of customers; `limit` above 200 is clamped to 200.")},
        query=PageParams,
    ),
    Operation(
        "POST",
        "/customers",
        "create_customer",
        "Create a customer",
        "customers",
        {201: (CustomerOut, "Created."), 409: EMAIL_TAKEN},
        request=CreateCustomerBody,
        response_headers={201: (LOCATION,)},
    ),
    Operation(
        "GET",
        "/customers/{id}",
        "get_customer",
        "Get a customer",
        "customers",
        {200: (CustomerOut, "The customer."), 404: NOT_FOUND},
        path_params=("id",),
    ),
    Operation(
        "PATCH",
        "/customers/{id}",
        "update_customer",
        "Change some of a customer's fields",
        "customers",
        {
            200: (CustomerOut, "The updated customer."),
            404: NOT_FOUND,
            409: EMAIL_TAKEN,
            422: (Problem, "The body is invalid (`orders_count` is read-only); `errors` names each bad field."),
        },
        request=UpdateCustomerBody,
        path_params=("id",),
    ),
    Operation(
        "DELETE",
        "/customers/{id}",
        "delete_customer",
        "Delete a customer",
        "customers",
        {204: (None, "Deleted."), 404: NOT_FOUND},
        path_params=("id",),
    ),
]


def openapi_spec(token_url: str = DEV_TOKEN_URL) -> dict:
    spec = build_spec(
        "Customer service",
        "Customers, and how many orders each has placed (counted from `order.created` events).",
        OPERATIONS + COMMON_OPERATIONS,
    )
    return secure(spec, route_scopes(routes, access), token_url)
