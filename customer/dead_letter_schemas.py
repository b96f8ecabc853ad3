"""The shapes of the dead-letter operations (`/ops/dead-letters`, and `customer.ops --json`)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from shared.pagination import PageParams
from shared.schemas import INPUT, TEXT_PATTERN

State = Literal["open", "replayed", "discarded"]


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC; one whose UTC falls outside year 1-9999 cannot be compared with."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # pydantic would take true for 1
        raise ValueError("an integer is expected")
    return value


def _iso_only(value: object) -> object:
    """Not a number of seconds, which pydantic would take as a Unix time: the document says date-time."""
    if isinstance(value, int | float) or (isinstance(value, str) and "-" not in value):
        raise ValueError("an ISO 8601 date and time is expected")
    return value


Moment = Annotated[datetime, AfterValidator(_utc), BeforeValidator(_iso_only)]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
BULK_MAX = 10_000  # dead letters one bulk action takes at most; run it again for more


class DeadLetterFilter(BaseModel):
    """Which dead letters: every field given must match (none: all)."""

    model_config = INPUT

    reason: str | None = Field(None, max_length=64, pattern=NO_NUL, description="The kind, e.g. `unknown_customer`.")
    event_type: str | None = Field(None, max_length=64, pattern=NO_NUL)
    customer_id: Annotated[int, BeforeValidator(_not_bool)] | None = Field(None, ge=-(2**63), lt=2**63)
    state: State | None = None
    since: Moment | None = Field(None, description="Last failed at or after this time (UTC without a zone).")
    until: Moment | None = Field(None, description="Last failed before this time (UTC without a zone).")
    error: str | None = Field(None, max_length=2000, pattern=NO_NUL, description="The exact error text (a group's).")


class DeadLetterQuery(DeadLetterFilter, PageParams):
    """The list's query: the filter's fields and the page's."""

    model_config = ConfigDict(extra="ignore")

    def filters(self) -> dict:
        return self.model_dump(include=set(DeadLetterFilter.model_fields))


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str = Field(
        description="The event id; for a message without one `message:<message id>:<hash>` or `body:<sha256>`."
    )
    event_id: UUID | None
    event_type: str | None
    customer_id: int | None
    reason: str
    error: str
    attempts: int = Field(description="Attempts over every time it was dead-lettered.")
    first_failed_at: datetime
    last_failed_at: datetime
    state: State
    message_id: str | None
    sender: str | None = Field(description="The AMQP user_id it arrived with.")
    created_at: datetime


class HistoryEntry(BaseModel):
    at: datetime
    reason: str
    error: str
    attempts: int


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    dead_letter_key: str | None
    reason: str
    detail: dict[str, Any]


class DeadLetterDetail(DeadLetterOut):
    content_type: str | None
    headers: dict[str, Any] = Field(description="The AMQP headers it carried: request id, actor, trace context...")
    body: str = Field(description="The body as received (UTF-8; undecodable bytes replaced).")
    history: list[HistoryEntry]
    audit: list[AuditOut]


class GroupOut(BaseModel):
    reason: str
    error: str
    count: int
    first_failed_at: datetime
    last_failed_at: datetime


class Groups(BaseModel):
    groups: list[GroupOut]


class ReplayBody(BaseModel):
    """Replay one dead letter; with `body`, an edited body (validated as the consumer would) replaces it."""

    model_config = INPUT

    reason: str = Field(max_length=1000, pattern=TEXT_PATTERN, description="Why: kept in the audit.")
    body: dict[str, Any] | None = Field(None, description="The edited event; its `event_id` must stay the same.")
    untrusted: StrictBool = Field(
        False, description="Also when it came from an untrusted sender (once you checked it)."
    )


class DiscardBody(BaseModel):
    model_config = INPUT

    reason: str = Field(max_length=1000, pattern=TEXT_PATTERN, description="Why: kept in the audit.")


class BulkBody(BaseModel):
    """A filter's worth (a group is the filter `reason` and `error`); only open dead letters are taken."""

    model_config = INPUT

    filter: DeadLetterFilter = Field(default_factory=DeadLetterFilter)
    reason: str = Field(max_length=1000, pattern=TEXT_PATTERN, description="Why: kept in the audit.")
    dry_run: StrictBool = Field(False, description="Say what would be done, and do nothing.")
    untrusted: StrictBool = Field(False, description="Replay: also those from an untrusted sender.")
    limit: int = Field(1000, ge=1, le=BULK_MAX)


class ActionResult(BaseModel):
    id: int
    key: str
    event_id: UUID | None
    action: str
    state: State


class BulkResult(BaseModel):
    action: str
    dry_run: bool
    matched: int = Field(description="Dead letters the filter took (at most `limit`).")
    done: list[ActionResult]
    skipped: list[ActionResult] = Field(description="Left as they are (an untrusted sender, without `untrusted`).")
    failed: list[dict[str, Any]]
