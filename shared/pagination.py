"""Page parameters and the page shape of every list endpoint."""

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Item = TypeVar("Item")


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
    offset: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0  # PostgreSQL's OFFSET is a bigint


class Page(BaseModel, Generic[Item]):
    model_config = ConfigDict(from_attributes=True)

    items: list[Item]
    total: int
    limit: int
    offset: int


def page_of(item: type[BaseModel], items: list, total: int, params: PageParams) -> Page:
    """The page every list endpoint answers, each item read into `item` (the route's output model)."""
    page = {"items": items, "total": total, "limit": params.limit, "offset": params.offset}
    return Page[item].model_validate(page, from_attributes=True)  # type: ignore[valid-type]
