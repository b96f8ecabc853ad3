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


D = Field  # every property carries a description (tests/test_docs.py)


class DeadLetterFilter(BaseModel):
    """Which dead letters: every field given must match (none: all)."""

    model_config = INPUT

    reason: str | None = D(None, max_length=64, pattern=NO_NUL, description="The kind, e.g. `unknown_customer`.")
    event_type: str | None = D(None, max_length=64, pattern=NO_NUL, description="The event type, e.g. `order.created`.")
    customer_id: Annotated[int, Field(ge=-(2**63), lt=2**63), BeforeValidator(_not_bool)] | None = D(
        None, description="The customer the event names."
    )
    state: State | None = D(None, description="`open`, `replayed` or `discarded`.")
    since: Moment | None = D(None, description="Last failed at or after this time (UTC without a zone).")
    until: Moment | None = D(None, description="Last failed before this time (UTC without a zone).")
    error: str | None = D(None, max_length=2000, pattern=NO_NUL, description="The exact error text (a group's).")


class DeadLetterQuery(DeadLetterFilter, PageParams):
    """The list's query: the filter's fields and the page's."""

    model_config = ConfigDict(extra="ignore")

    def filters(self) -> dict:
        return self.model_dump(include=set(DeadLetterFilter.model_fields))


class DeadLetterOut(BaseModel):
    """A dead letter, without its body."""

    model_config = ConfigDict(from_attributes=True)

    id: int = D(description="Its id in this service.")
    key: str = D(
        description="The event id; for a message without one `message:<message id>:<hash>` or `body:<sha256>`."
    )
    event_id: UUID | None = D(description="The event's id, if its body names one.")
    event_type: str | None = D(description="The event's type, if its body names one.")
    customer_id: int | None = D(description="The customer the event names, if it does.")
    reason: str = D(
        description="Why it was dead-lettered, as the metric's label: `unknown_customer`, `delivery_limit`..."
    )
    error: str = D(description="The last error, as recorded.")
    attempts: int = D(description="Attempts over every time it was dead-lettered.")
    first_failed_at: datetime = D(description="When it was first dead-lettered.")
    last_failed_at: datetime = D(description="When it was last dead-lettered.")
    state: State = D(description="`open`, `replayed` or `discarded`.")
    message_id: str | None = D(description="The AMQP message id it carried.")
    sender: str | None = D(description="The AMQP user_id it arrived with.")
    created_at: datetime = D(description="When its row was made (its first failure): the list's order.")


class HistoryEntry(BaseModel):
    """One time it was dead-lettered."""

    at: datetime = D(description="When.")
    reason: str = D(description="Why, as the metric's label.")
    error: str = D(description="The error then.")
    attempts: int = D(description="Attempts that time.")


class AuditOut(BaseModel):
    """One change an operator made."""

    id: int = D(description="Its id.")
    at: datetime = D(description="When.")
    actor: str = D(description="Who: the token's `sub`, or the command line's `--by`.")
    action: str = D(description="`replay`, `edit_and_replay`, `discard`, or a bulk `..._dry_run`.")
    dead_letter_key: str | None = D(description="The dead letter's key; none for a bulk dry run.")
    reason: str = D(description="Why, as the operator said.")
    detail: dict[str, Any] = D(description="The state before; an edit's `diff`; a dry run's filter and keys.")


class DeadLetterDetail(DeadLetterOut):
    """A dead letter with its body, headers, history and audit."""

    content_type: str | None = D(description="The AMQP content type it carried.")
    headers: dict[str, Any] = D(description="The AMQP headers it carried: request id, actor, trace context...")
    body: str = D(description="The body as received (UTF-8; undecodable bytes replaced).")
    history: list[HistoryEntry] = D(description="Each time it was dead-lettered, oldest first.")
    audit: list[AuditOut] = D(description="What operators did to it, newest first.")


class GroupOut(BaseModel):
    """Dead letters with one reason and error."""

    reason: str = D(description="Why, as the metric's label.")
    error: str = D(description="The error text they share.")
    count: int = D(description="How many.")
    first_failed_at: datetime = D(description="The earliest first failure among them.")
    last_failed_at: datetime = D(description="The latest failure among them.")


class Groups(BaseModel):
    """The filter's dead letters by reason and error, largest group first (at most 500 groups)."""

    groups: list[GroupOut] = D(description="The groups.")


class ReplayBody(BaseModel):
    """Replay one dead letter; with `body`, an edited body (validated as the consumer would) replaces it."""

    model_config = INPUT

    reason: str = D(max_length=1000, pattern=TEXT_PATTERN, description="Why: kept in the audit.")
    body: dict[str, Any] | None = D(None, description="The edited event; its `event_id` must stay the same.")
    untrusted: StrictBool = D(False, description="Also when it came from an untrusted sender (once you checked it).")


class DiscardBody(BaseModel):
    """Discard one dead letter."""

    model_config = INPUT

    reason: str = D(max_length=1000, pattern=TEXT_PATTERN, description="Why: kept in the audit.")


class BulkBody(BaseModel):
    """A filter's worth (a group is the filter `reason` and `error`); only open dead letters are taken."""

    model_config = INPUT

    filter: DeadLetterFilter = D(default_factory=DeadLetterFilter, description="Which dead letters.")
    reason: str = D(max_length=1000, pattern=TEXT_PATTERN, description="Why: kept in the audit.")
    dry_run: StrictBool = D(False, description="Say what would be done, and do nothing.")
    untrusted: StrictBool = D(False, description="Replay: also those from an untrusted sender.")
    limit: int = D(1000, ge=1, le=BULK_MAX, description="At most this many; run it again for more.")


class ActionResult(BaseModel):
    """What was done to one dead letter."""

    id: int = D(description="The dead letter's id.")
    key: str = D(description="Its key.")
    event_id: UUID | None = D(description="Its event id, if any.")
    action: str = D(description="`replay`, `edit_and_replay` or `discard`.")
    state: State = D(description="Its state now.")


class BulkResult(BaseModel):
    """What a bulk action did (or, dry, would do)."""

    action: str = D(description="`replay` or `discard`.")
    dry_run: bool = D(description="Whether nothing was changed.")
    matched: int = D(description="Dead letters the filter took (at most `limit`).")
    done: list[ActionResult] = D(description="Replayed or discarded (with `dry_run`: would be).")
    skipped: list[ActionResult] = D(description="Left as they are (an untrusted sender, without `untrusted`).")
    failed: list[dict[str, Any]] = D(description="Each that failed: `id`, `key`, `error`.")
