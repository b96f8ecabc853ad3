"""Page parameters, cursors and the page shape of every list endpoint.

Every list is sorted newest first, by (created_at, id). A page's `next` is an opaque cursor: the
position of its last row with the filters (and limit) of the list, so the following page reads
from that position on, through the index that serves the list's order, whatever its depth.
"""

import base64
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from shared.http import json_response
from shared.problems import ValidationFailed, field_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Item = TypeVar("Item")
Params = TypeVar("Params", bound="PageParams")
Position = tuple[datetime, int]  # (created_at, id) of a page's last row
CURSOR_MAX_LENGTH = 400  # a position, a limit and the filters, in URL-safe base64
# What a cursor carries besides the list's own filters.
PAGING_FIELDS = frozenset({"limit", "offset", "count", "cursor"})


def _clamp(value: object) -> object:
    """Clamp only a well-formed integer above the maximum; anything else is left to validation."""
    if isinstance(value, str) and value.isdigit() and int(value) > MAX_LIMIT:
        return MAX_LIMIT
    return value


class PageParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Validators run bottom-up: the clamp sees the raw string first; the schema shows minimum 1, no maximum.
    limit: Annotated[
        int,
        Field(ge=1, description=f"Page size; above {MAX_LIMIT} is clamped to {MAX_LIMIT}."),
        BeforeValidator(_clamp),
    ] = DEFAULT_LIMIT
    offset: Annotated[
        int,
        Field(
            ge=0,
            le=2**63 - 1,  # PostgreSQL's OFFSET is a bigint; the service's PAGE_MAX_OFFSET is checked after
            description="Rows to skip, up to PAGE_MAX_OFFSET (10,000 by default); page further with `cursor`.",
        ),
    ] = 0
    count: bool = Field(
        True, description="`false` leaves `total` out: an exact count costs in proportion to the rows it counts."
    )
    cursor: str | None = Field(
        None,
        max_length=CURSOR_MAX_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A page's `next`: the following page, with the same filters (and limit, unless given).",
    )


def _without_default(schema: dict) -> None:
    schema.pop("default", None)


def _not_asked(value: int | None) -> bool:
    """A page leaves out what was not asked for (a total with count=false, an offset under a cursor)."""
    return value is None


class Page(BaseModel, Generic[Item]):
    # A description for each parametrised page (they do not inherit a docstring).
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"description": "A page of a list, newest first."}
    )

    items: list[Item] = Field(description="The page's rows, newest first.")
    total: int | SkipJsonSchema[None] = Field(
        None,
        description="Rows matching the filters; absent with `count=false` and on pages read by cursor.",
        json_schema_extra=_without_default,
        exclude_if=_not_asked,
    )
    limit: int = Field(description="The page size used: the one asked for, clamped to 200.")
    offset: int | SkipJsonSchema[None] = Field(
        None, description="Absent on pages read by cursor.", json_schema_extra=_without_default, exclude_if=_not_asked
    )
    next: str | None = Field(description="The cursor of the following page; null on the last page.")


def _encode(data: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _decode(text: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def check_offset(params: PageParams, max_offset: int) -> None:
    if params.offset > max_offset:
        raise ValidationFailed(
            f"An offset above {max_offset} is not served: page further with the `next` cursor.",
            field_error("offset", f"must be at most {max_offset}; use `cursor`"),
        )


def resume(params: Params) -> tuple[Params, Position | None]:
    """The query a cursor continues (its filters and limit; a limit given now wins) and the position to
    read on from; without a cursor, `params` itself and None. A filter given beside the cursor (by the
    client, the route's path or the caller's token) must be the cursor's: a cursor never widens a list."""
    if params.cursor is None:
        return params, None
    try:
        cursor = _decode(params.cursor)
        created_at, row_id = cursor["after"]
        after = (datetime.fromisoformat(created_at), int(row_id))
        limit = params.limit if "limit" in params.model_fields_set else cursor["limit"]
        resumed = type(params).model_validate(
            {**cursor["filters"], "limit": limit, "count": False, "cursor": params.cursor}
        )
        given = params.model_fields_set - PAGING_FIELDS
        if any(getattr(resumed, name) != getattr(params, name) for name in given):
            raise ValueError("the cursor belongs to another list")
    except (ValueError, KeyError, TypeError, AttributeError):  # undecodable, or not a cursor of this list
        raise ValidationFailed(
            "The cursor is not one this list gave.", field_error("cursor", "is not a `next` of this list")
        ) from None
    return resumed, after


async def page_total(rows: list, params: PageParams, count: Callable[[], Awaitable[int]]) -> int | None:
    """The page's `total`: None unless asked for. A page that holds the list's end (`rows`, read with one
    more than the limit, did not fill it) tells it without the count's statement; past the end, only
    `count()` can."""
    if not params.count:
        return None
    if len(rows) <= params.limit and (rows or params.offset == 0):
        return params.offset + len(rows)
    return await count()


def page_response(request: web.Request, item: type[BaseModel], rows: list, params: PageParams, total: int | None):
    """The page of `rows` (read with one more than the limit, which tells whether another page follows),
    each read into `item`, with its `next` cursor and, when there is one, a Link header to it (RFC 8288)."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    cursor = None
    if more:
        filters = params.model_dump(mode="json", exclude=set(PAGING_FIELDS))
        after = [rows[-1].created_at.isoformat(), rows[-1].id]
        cursor = _encode({"after": after, "limit": params.limit, "filters": filters})
    page = {
        "items": rows,
        "total": total,
        "limit": params.limit,
        "offset": params.offset if params.cursor is None else None,
        "next": cursor,
    }
    body = Page[item].model_validate(page, from_attributes=True)  # type: ignore[valid-type]
    link = {"Link": f'<{request.rel_url.with_query(cursor=cursor)}>; rel="next"'} if cursor else None
    return json_response(body, headers=link)
