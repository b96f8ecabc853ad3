"""The dead-letter operations in the customer service's OpenAPI document, with their examples."""

from datetime import UTC, datetime
from uuid import UUID

from customer.dead_letters.actions import DeadLetterNotFound, ReplayNotConfirmed
from customer.dead_letters.handlers import OpsClosed
from customer.dead_letters.schemas import (
    ActionResult,
    BulkBody,
    BulkResult,
    DeadLetterDetail,
    DeadLetterFilter,
    DeadLetterOut,
    DeadLetterQuery,
    DiscardBody,
    GroupOut,
    Groups,
    HistoryEntry,
    ReplayBody,
)
from shared.openapi import Operation, Raw
from shared.pagination import Page
from shared.problems import Conflict

OPS = "dead letters"
DEAD_LETTER_TAGS = {OPS: "What the consumer could not apply, kept in the customer service's database; replay it."}
EVENT_ID = UUID("7d0c5b2e-3f4a-4b8c-9d1e-2f3a4b5c6d7e")
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LETTER = DeadLetterOut(
    id=7,
    key=str(EVENT_ID),
    event_id=EVENT_ID,
    event_type="order.created",
    customer_id=42,
    reason="unknown_customer",
    error="customer 42 does not exist",
    attempts=1,
    first_failed_at=AT,
    last_failed_at=AT,
    state="open",
    message_id=str(EVENT_ID),
    sender="order_service",
    created_at=AT,
)
DETAIL = DeadLetterDetail(
    **LETTER.model_dump(),
    content_type="application/json",
    headers={
        "x-request-id": "3f2a",
        "x-actor": "client-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    },
    body=f'{{"schema_version":1,"event_id":"{EVENT_ID}","event_type":"order.created","data":{{"customer_id":42}}}}',
    history=[HistoryEntry(at=AT, reason="unknown_customer", error="customer 42 does not exist", attempts=1)],
    audit=[],
)
REPLAYED = ActionResult(id=7, key=str(EVENT_ID), event_id=EVENT_ID, action="replay", state="replayed")
DISCARDED = REPLAYED.model_copy(update={"action": "discard", "state": "discarded"})
GROUP = Groups(
    groups=[
        GroupOut(
            reason="unknown_customer",
            error="customer 42 does not exist",
            count=3,
            first_failed_at=AT,
            last_failed_at=AT,
        )
    ]
)
SELECTION = DeadLetterFilter(reason="unknown_customer", error="customer 42 does not exist")

CLOSED = ((OpsClosed(),), "With AUTH_MODE=off, OPS_ALLOW_UNAUTHENTICATED is not true (or the token lacks the scope).")
GONE = ((DeadLetterNotFound(7),), "No dead letter with this id.")

DEAD_LETTER_OPERATIONS = [
    Operation(
        "GET",
        "/ops/dead-letters",
        "list_dead_letters",
        "List dead letters, newest first, by filter",
        OPS,
        {
            200: (Page[DeadLetterOut](items=[LETTER], total=1, limit=50, offset=0, next=None), "A page (no bodies)."),
            403: CLOSED,
        },
        "Read from the customer service's database: listing changes nothing in the broker.",
        query=DeadLetterQuery,
    ),
    Operation(
        "GET",
        "/ops/dead-letters/groups",
        "dead_letter_groups",
        "Dead letters grouped by reason and error",
        OPS,
        {200: (GROUP, "Each group's count and first and last failure."), 403: CLOSED},
        "The filter's dead letters counted by reason and error, largest first: a group replays with the same filter.",
        query=DeadLetterQuery,
    ),
    Operation(
        "GET",
        "/ops/dead-letters/{id}",
        "get_dead_letter",
        "One dead letter: its body, headers, history and audit",
        OPS,
        {200: (DETAIL, "The dead letter."), 403: CLOSED, 404: GONE},
        "The body as received, the headers it carried, each time it was dead-lettered, and who did what to it.",
        path_params=("id",),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/{id}/replay",
        "replay_dead_letter",
        "Replay one dead letter to the consumer's queue, as it was or edited",
        OPS,
        {
            200: (REPLAYED, "Published (confirmed) with the same event id; recorded in the audit."),
            403: CLOSED,
            404: GONE,
            409: ((Conflict("Dead letter 7 was discarded; it is not replayed."),), "Discarded, or untrusted."),
            503: ((ReplayNotConfirmed("no broker connection"),), "The broker did not take it; nothing changed."),
        },
        "Published by the customer service to its own work queue only, with the same event id: the consumer's "
        "deduplication holds. With `body`, the edited event (checked as the consumer checks it, same event id).",
        request=ReplayBody(reason="customer 42 restored"),
        path_params=("id",),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/{id}/discard",
        "discard_dead_letter",
        "Discard one dead letter, saying why",
        OPS,
        {200: (DISCARDED, "Discarded; recorded in the audit."), 403: CLOSED, 404: GONE},
        "Marks it discarded (it is never replayed); the reason goes to the audit.",
        request=DiscardBody(reason="customer erased"),
        path_params=("id",),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/replay",
        "replay_dead_letters",
        "Replay a filter's worth (or a group) of open dead letters",
        OPS,
        {
            200: (
                BulkResult(action="replay", dry_run=True, matched=1, done=[REPLAYED], skipped=[], failed=[]),
                "What was (or, dry, would be) replayed.",
            )
        },
        "Oldest first, each as one replay; with `dry_run` nothing is sent and the audit notes the dry run.",
        request=BulkBody(filter=SELECTION, reason="customers restored", dry_run=True),
    ),
    Operation(
        "POST",
        "/ops/dead-letters/discard",
        "discard_dead_letters",
        "Discard a filter's worth (or a group) of open dead letters",
        OPS,
        {
            200: (
                BulkResult(action="discard", dry_run=False, matched=1, done=[DISCARDED], skipped=[], failed=[]),
                "What was discarded.",
            )
        },
        "Each open dead letter of the filter is discarded; with `dry_run` nothing changes but the audit.",
        request=BulkBody(filter=SELECTION, reason="customers erased"),
    ),
    Operation(
        "GET",
        "/ops/console",
        "ops_console",
        "The operator's page for dead letters",
        OPS,
        {200: (Raw("text/html", example="<!doctype html>"), "A self-contained page (no CDN)."), 403: CLOSED},
        "Groups, open dead letters, one letter's body and history, replay / edit / discard. It holds no data: "
        "with tokens on it is open and sends the token it is given.",
    ),
]
