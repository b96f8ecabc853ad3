"""What a service declares about its operations, and what every service has in common.

A model in a declaration may be given as an instance instead of its class: the instance is the example the
document shows, rendered as the service renders it, so an example can never drift from its schema. A problem
response lists the errors (AppError instances, or the HTTP exceptions aiohttp raises) that give it.
"""

from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from shared.admission import OVERLOADED, RETRY_AFTER_SECONDS
from shared.http import BODY_READ_TIMEOUT
from shared.problems import (
    INTERNAL_ERROR,
    AppError,
    BadRequest,
    NotFound,
    RequestTimeout,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
    dependency_failures,
    field_error,
)
from shared.request_id import HEADER as REQUEST_ID_HEADER


class FieldError(BaseModel):
    """One field at fault."""

    field: str = Field(description="The field, parameter or header at fault, dotted inside the body's envelope.")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """RFC 9457 problem details, exactly as `shared.problems.problem` renders them (every field always sent)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: str = Field(
        "about:blank",
        description="The kind of problem: `about:blank` when the status says it all, else a URI of its own "
        "(each response lists those it can give).",
    )
    title: str = Field(description="The HTTP status's reason phrase.")
    status: int = Field(description="The HTTP status code, as in the response's status line.")
    detail: str = Field(description="What went wrong with this request, for a person to read.")
    errors: list[FieldError] = Field([], description="Each field at fault; empty when no field is.")


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = Field(description="Always `ok`: the process answers.")


class Readiness(BaseModel):
    """Every dependency is up."""

    status: Literal["ready"] = Field(description="Always `ready`; a service that is not answers 503.")
    checks: dict[str, Literal["up"]] = Field(description="Each dependency (`database`, `broker`) and its state.")
    auth: Literal["off"] | None = Field(None, description="Present, as `off`, when the service checks no token.")


@dataclass(frozen=True)
class Raw:
    """A response body that is not a pydantic model: its media type, schema and an example."""

    media_type: str
    schema: dict = field(default_factory=lambda: {"type": "string"})
    example: object = None


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    example: object = None


Model = type[BaseModel] | BaseModel  # a class, or an instance of it: the example
Errors = tuple[AppError | web.HTTPException, ...]  # the problems a status stands for: its examples
# status → (body, description); the body is a model, Problem (a problem without examples), Errors, Raw or None.
Response = tuple[Model | Errors | Raw | None, str]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the router's canonical path, e.g. "/customers/{id}"
    operation_id: str
    summary: str
    tag: str
    responses: dict[int, Response]
    description: str = ""  # required in practice: a test holds every operation to having one
    request: Model | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()  # integer ids, as `shared.http.path_id` reads them
    headers: tuple[Header, ...] = ()  # request headers besides X-Request-ID
    response_headers: dict[int, tuple[Header, ...]] = field(default_factory=dict)
    # Passes admission and may lose its database: may answer 503 with Retry-After. Not the docs and probes.
    admitted: bool = True


LOCATION = Header("Location", "The new resource's path.", example="/customers/1")
RETRY_AFTER = Header(
    "Retry-After",
    "Seconds after which the same request may be sent again; nothing was changed.",
    {"type": "integer", "minimum": 1},
    example=RETRY_AFTER_SECONDS,
)
REQUEST_ID = Header(
    REQUEST_ID_HEADER, "The request's id: the client's, or a new one. Every log line about the request carries it."
)

# What `shared.http`, `shared.problems` and the admission answer, added to each operation that parses a body, a
# query or an id, or that is admitted, unless the operation describes that status itself.
BODY_PROBLEMS: dict[int, Response] = {
    400: ((BadRequest("The request body is not valid JSON."),), "The body is empty or not valid JSON."),
    408: (
        (RequestTimeout(f"The request body did not arrive within {BODY_READ_TIMEOUT:g} s."),),
        f"The body did not arrive within {BODY_READ_TIMEOUT:g} s of the headers.",
    ),
    413: ((web.HTTPRequestEntityTooLarge(2**20, 2**20 + 1),), "The body is larger than 1 MiB."),
    415: ((UnsupportedMediaType("Send the body as application/json."),), "The body is not sent as application/json."),
    422: (
        (),  # its example: build.py refuses an empty object with the operation's own model
        "The body is invalid; `errors` names each bad field.",
    ),
}
QUERY_PROBLEMS: dict[int, Response] = {
    422: (
        (
            ValidationFailed(
                "The query parameters are invalid.", field_error("limit", "Input should be a valid integer")
            ),
        ),
        "A query parameter is invalid; `errors` names it.",
    )
}
PATH_PROBLEMS: dict[int, Response] = {
    404: ((NotFound("No resource with id 2147483648."),), "No resource with this id.")
}
ANY_PROBLEMS: dict[int, Response] = {
    500: ((INTERNAL_ERROR,), "An unexpected error; the detail reveals no internals."),
}
UNAVAILABLE: Errors = (OVERLOADED, *dependency_failures())
ADMITTED_PROBLEMS: dict[int, Response] = {
    503: (
        UNAVAILABLE,
        "The service is at capacity, or its database is unreachable or too slow; nothing was changed. "
        "Send the same request again after `Retry-After` seconds.",
    )
}


def unavailable(*more: ServiceUnavailable, description: str) -> Response:
    """An operation's 503: what every admitted operation may answer, and its own causes."""
    return (UNAVAILABLE + more, description)


COMMON_TAGS = {"operations": "Probes, metrics and these documents: open, and answered even when the service is full."}

COMMON_OPERATIONS = [
    Operation(
        "GET",
        "/health",
        "health",
        "The process is alive",
        "operations",
        {200: (Health(status="ok"), "Alive.")},
        "The liveness probe: answers as long as the process does, whatever its dependencies.",
        admitted=False,
    ),
    Operation(
        "GET",
        "/ready",
        "ready",
        "The database and the broker are reachable",
        "operations",
        {
            200: (
                Readiness(status="ready", checks={"database": "up", "broker": "up"}),
                "Ready: every dependency is up.",
            ),
            503: (
                (ServiceUnavailable("Not ready: broker down.", field_error("broker", "down")),),
                "Not ready; `errors` names each dependency that is down (`database`, `broker`).",
            ),
        },
        "The readiness probe: a load balancer sends traffic only while it answers 200.",
        admitted=False,
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        "operations",
        {200: (Raw("text/plain", example="http_requests_total 1\n"), "Request counts and latencies, events, backlog.")},
        "The Prometheus text format, for a scraper.",
        admitted=False,
    ),
    Operation(
        "GET",
        "/openapi.json",
        "openapi",
        "This OpenAPI document",
        "operations",
        {200: (Raw("application/json", {"type": "object"}, {"openapi": "3.1.0"}), "The OpenAPI 3.1 document.")},
        "Generated from the pydantic models that validate the requests.",
        admitted=False,
    ),
    Operation(
        "GET",
        "/docs",
        "docs",
        "Interactive documentation (Swagger UI)",
        "operations",
        {200: (Raw("text/html", example="<!doctype html>"), "A page rendering this document.")},
        "Swagger UI, served from the service itself (no CDN).",
        admitted=False,
    ),
    Operation(
        "GET",
        "/asyncapi.json",
        "asyncapi",
        "The AsyncAPI document of this service's events",
        "operations",
        {200: (Raw("application/json", {"type": "object"}, {"asyncapi": "3.0.0"}), "The AsyncAPI 3.0 document.")},
        "What the service publishes or consumes on RabbitMQ, generated from the event models.",
        admitted=False,
    ),
    Operation(
        "GET",
        "/docs/events",
        "event_docs",
        "Readable documentation of this service's events",
        "operations",
        {200: (Raw("text/html", example="<!doctype html>"), "A page rendering the AsyncAPI document.")},
        "The AsyncAPI document as a page: channels, operations, each message's fields and an example.",
        admitted=False,
    ),
]
