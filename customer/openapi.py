"""The customer service's OpenAPI document, from the models in `customer.schemas` that validate its requests."""

from customer.dead_letter_schemas import (
    ActionResult,
    BulkBody,
    BulkResult,
    DeadLetterDetail,
    DeadLetterOut,
    DeadLetterQuery,
    DiscardBody,
    Groups,
    ReplayBody,
)
from customer.routes import access, routes
from customer.schemas import CreateCustomerBody, CustomerOut, UpdateCustomerBody
from shared.openapi import (
    COMMON_OPERATIONS,
    DEV_TOKEN_URL,
    LOCATION,
    Operation,
    Problem,
    Raw,
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


OPS_CLOSED = (
    Problem,
    "The token lacks `ops:dead-letters`; or, with AUTH_MODE=off, OPS_ALLOW_UNAUTHENTICATED is not true "
    "(the detail says so).",
)
DEAD_LETTER_GONE = (Problem, "No dead letter with this id.")
BROKER_AWAY = (Problem, "The broker did not take the replay; nothing changed. `Retry-After` says when to try again.")
OPS = "dead letters"
DEAD_LETTER_OPERATIONS = [
    Operation(
        "GET",
        "/ops/dead-letters",
        "list_dead_letters",
        "List dead letters, newest first, by filter",
        OPS,
        {200: (Page[DeadLetterOut], "A page of dead letters (no bodies)."), 403: OPS_CLOSED},
        query=DeadLetterQuery,
        description="Read from the customer service's database: listing changes nothing in the broker.",
    ),
    Operation(
        "GET",
        "/ops/dead-letters/groups",
        "dead_letter_groups",
        "Dead letters grouped by reason and error",
        OPS,
        {200: (Groups, "Each group's count and first and last failure."), 403: OPS_CLOSED},
        query=DeadLetterQuery,
    ),
    Operation(
        "GET",
        "/ops/dead-letters/{id}",
        "get_dead_letter",
        "One dead letter: its body, headers, history and audit",
        OPS,
        {200: (DeadLetterDetail, "The dead letter."), 403: OPS_CLOSED, 404: DEAD_LETTER_GONE},
        path_params=("id",),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/{id}/replay",
        "replay_dead_letter",
        "Replay one dead letter to the consumer's queue, as it was or edited",
        OPS,
        {
            200: (ActionResult, "Published (confirmed) with the same event id; recorded in the audit."),
            403: OPS_CLOSED,
            404: DEAD_LETTER_GONE,
            409: (Problem, "It was discarded, or came from an untrusted sender and `untrusted` was not given."),
            422: (Problem, "The body is invalid, or the edited event would be refused or changes its event id."),
            503: BROKER_AWAY,
        },
        request=ReplayBody,
        path_params=("id",),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/{id}/discard",
        "discard_dead_letter",
        "Discard one dead letter, saying why",
        OPS,
        {200: (ActionResult, "Discarded; recorded in the audit."), 403: OPS_CLOSED, 404: DEAD_LETTER_GONE},
        request=DiscardBody,
        path_params=("id",),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/replay",
        "replay_dead_letters",
        "Replay a filter's worth (or a group) of open dead letters",
        OPS,
        {200: (BulkResult, "What was replayed, skipped and failed (with `dry_run`: what would be)."), 403: OPS_CLOSED},
        request=BulkBody,
    ),
    Operation(
        "POST",
        "/ops/dead-letters/discard",
        "discard_dead_letters",
        "Discard a filter's worth (or a group) of open dead letters",
        OPS,
        {200: (BulkResult, "What was discarded (with `dry_run`: what would be)."), 403: OPS_CLOSED},
        request=BulkBody,
    ),
    Operation(
        "GET",
        "/ops/console",
        "ops_console",
        "The operator's page for dead letters",
        OPS,
        {200: (Raw("text/html"), "A self-contained page (no CDN)."), 403: OPS_CLOSED},
    ),
]


def openapi_spec(token_url: str = DEV_TOKEN_URL) -> dict:
    spec = build_spec(
        "Customer service",
        "Customers, and how many orders each has placed (counted from `order.created` events).",
        OPERATIONS + DEAD_LETTER_OPERATIONS + COMMON_OPERATIONS,
    )
    return secure(spec, route_scopes(routes, access), token_url)
