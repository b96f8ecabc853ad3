"""Request parsing and response rendering shared by both services' handlers."""

import asyncio
import contextlib
import functools
import re
from typing import Any, TypeVar, get_origin

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from shared.problems import BadRequest, NotFound, RequestTimeout, UnsupportedMediaType, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)

MAX_INT_ID = 2**31 - 1  # ids are PostgreSQL `integer`s
MAX_ID_DIGITS = len(str(MAX_INT_ID))
# A client that sends its headers and then stalls on the body holds a handler until this runs out.
BODY_READ_TIMEOUT = 10.0


def to_json(data: Any) -> bytes:
    """`data` as JSON: a contract model as pydantic dumps it; anything else (problems, health, counts)
    by orjson, datetimes written as pydantic writes them (ISO 8601, UTC as `Z`)."""
    if isinstance(data, BaseModel):
        return data.model_dump_json().encode()
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    """`data` (a model, or plain data) as JSON; bytes are taken as JSON already rendered."""
    body = data if isinstance(data, bytes) else to_json(data)
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def created(
    request: web.Request,
    route_name: str,
    resource_id: int,
    data: Any,
    headers: dict | None = None,
) -> web.Response:
    """201 with the new resource's Location (the route `route_name` with `id`)."""
    # The route's template with the id put in: url_for would quote and build a URL for digits that need neither.
    location = request.app.router[route_name].canonical.replace("{id}", str(resource_id))
    return json_response(data, status=201, headers={"Location": location, **(headers or {})})


# pydantic names the member of a union that failed in the error's location (`name.none`,
# `name.function-after[check(), constrained-str]`): internal paths, never a field of the contract.
_UNION_MEMBER = re.compile(r"[^A-Za-z0-9_]|^(none|str|int|float|bool|decimal|literal|list|dict)$")


def validation_errors(exc: ValidationError, strip_envelope: bool = False) -> list[dict]:
    """pydantic's errors as the contract's `[{field, message}]`, fields named inside the envelope.

    A value no member of a union accepts gives one error per member; the field gets one, the first
    that is not "should be null" (the member a client meant)."""
    by_field: dict[str, dict] = {}
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = error["loc"][1:] if strip_envelope and len(error["loc"]) > 1 else error["loc"]
        field = ".".join(str(part) for part in loc if not (isinstance(part, str) and _UNION_MEMBER.search(part)))
        field = field or "body"
        if field not in by_field or (by_field[field]["type"] == "none_required" != error["type"]):
            by_field[field] = {"type": error["type"], "message": error["msg"]}
    return [{"field": field, "message": error["message"]} for field, error in by_field.items()]


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def read_body(request: web.Request) -> bytes:
    """The whole body, within BODY_READ_TIMEOUT (408) and client_max_size (413); aiohttp keeps it, so a
    second call returns it at once."""
    if request.content_length is not None and request.content_length > request.client_max_size:
        raise web.HTTPRequestEntityTooLarge(request.client_max_size, request.content_length)  # before reading it
    # No timer for a body that came whole with the headers (a small one mostly does).
    arrival = contextlib.nullcontext() if request.content.is_eof() else asyncio.timeout(BODY_READ_TIMEOUT)
    try:
        async with arrival:
            return await request.read()  # aiohttp answers 413 past client_max_size (1 MiB)
    except TimeoutError:
        raise RequestTimeout(f"The request body did not arrive within {BODY_READ_TIMEOUT:g} s.") from None


# A refusal decided before the body was validated (shared/auth/access.py: a missing scope), raised right after:
# the documented order of checks puts a bad body's 422 before a 403.
DEFERRED_REFUSAL = web.RequestKey("deferred_refusal", Exception)


async def parse_json(request: web.Request, model: type[Model]) -> Model:
    """Validate the body against `model`: 415 if not JSON, 400 if malformed, 422 naming each bad field;
    then raise the refusal the request was given before its body was looked at, if any."""
    parsed = await _parse_json(request, model)
    refusal = request.get(DEFERRED_REFUSAL)
    if refusal is not None:
        raise refusal
    return parsed


async def _parse_json(request: web.Request, model: type[Model]) -> Model:
    if not _is_json(request.content_type):
        raise UnsupportedMediaType("Send the body as application/json.")
    body = await read_body(request)
    if not body.strip():
        raise BadRequest("The request body is empty; a JSON object is expected.")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise BadRequest("The request body is not valid JSON.") from None
        raise body_invalid(model, exc) from None


def body_invalid(model: type[BaseModel], exc: ValidationError) -> ValidationFailed:
    """The 422 for a body `model` refused, fields named inside its envelope."""
    return ValidationFailed(
        "The request body is invalid.", validation_errors(exc, strip_envelope=len(model.model_fields) == 1)
    )


def refusal_of(model: type[BaseModel], body: object) -> ValidationFailed:
    """What `parse_json` answers for `body` (which `model` must refuse): the API documents' examples."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return body_invalid(model, exc)
    raise ValueError(f"{model.__name__} accepts {body!r}")


@functools.cache  # once per model, not per request
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, field in model.model_fields.items() if get_origin(field.annotation) is list)


def parse_query(request: web.Request, model: type[Model]) -> Model:
    """A list field takes every value of its repeated parameter (`?id=1&id=2`); others take one."""
    lists = _list_fields(model)
    data = {key: request.query.getall(key) if key in lists else request.query[key] for key in request.query}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("The query parameters are invalid.", validation_errors(exc)) from None


def path_id(request: web.Request, name: str = "id") -> int:
    """The route matched `\\d+`; an id beyond the column's range cannot exist. A longer string of digits
    is not parsed at all: Python refuses to parse one of thousands of digits."""
    text = request.match_info[name]
    if len(text) > MAX_ID_DIGITS:
        raise NotFound(f"No resource has an id of {len(text)} digits.")
    value = int(text)
    if not 1 <= value <= MAX_INT_ID:
        raise NotFound(f"No resource with id {text}.")
    return value
