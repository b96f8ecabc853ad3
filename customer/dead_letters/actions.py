"""What an operator does with dead letters: look, group, replay (as they were, or edited), discard.

Every change is written to the audit (who, when, what, why; an edit's diff) in the transaction that
changes the row. A replay is published by the customer service itself, under its own broker user
(which its consumer trusts), with the same event id (so the consumer's deduplication holds: a second
replay of an applied event counts nothing), through its retry exchange with the work queue's name as
routing key: a binding that reaches the work queue and nothing else, never the `orders` exchange
other services listen on. The row stays locked from before the publish until the commit, so a replay
that dead-letters again at once is recorded after it, as open.
"""

import asyncio
import logging
from datetime import timedelta

import orjson
from aiormq.abc import AbstractChannel
from pamqp.commands import Basic

from customer.db_config import APP
from customer.dead_letters import repository
from customer.dead_letters.schemas import ActionResult, BulkResult
from customer.events.incoming import parse_event
from customer.events.redelivery import ATTEMPT_HEADER, LAST_ERROR_HEADER, Poison
from customer.settings import CustomerSettings
from shared.amqp import PERSISTENT, broker_user
from shared.db import transaction
from shared.problems import Conflict, NotFound, ServiceUnavailable, ValidationFailed, field_error

log = logging.getLogger(__name__)

REPLAYED_BY_HEADER = "x-replayed-by"
CONFIRM_TIMEOUT = 10.0
UNTRUSTED = "untrusted_sender"


class DeadLetterNotFound(NotFound):
    def __init__(self, dead_letter_id: int) -> None:
        super().__init__(f"No dead letter {dead_letter_id}.")


class ReplayNotConfirmed(ServiceUnavailable):
    def __init__(self, why: str) -> None:
        super().__init__(f"The broker did not take the replay ({why}); nothing was changed, try again.", retry_after=5)


def json_diff(before, after, path: str = "") -> list[dict]:
    """Each changed leaf: its path, the value before and after (absent: null)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for name in sorted(set(before) | set(after), key=str):
            changes += json_diff(before.get(name), after.get(name), f"{path}/{name}")
        return changes
    return [] if before == after else [{"path": path or "/", "from": before, "to": after}]


def edited_body(row: dict, edited: dict, settings: CustomerSettings) -> tuple[bytes, list[dict]]:
    """The edited event as the consumer will read it, checked by the consumer's own parser, and the diff."""
    body = orjson.dumps(edited)
    try:
        event = parse_event(body, timedelta(hours=settings.processed_events_retention_hours))
    except Poison as poison:
        raise ValidationFailed(
            f"The edited event would be refused: {poison}", field_error("body", str(poison))
        ) from None
    if row["event_id"] is not None and event.event_id != row["event_id"]:
        raise ValidationFailed(
            "An edit keeps the event id: the consumer's deduplication depends on it.",
            field_error("body.event_id", f"must stay {row['event_id']}"),
        )
    try:
        before = orjson.loads(row["body"])
    except orjson.JSONDecodeError:
        before = bytes(row["body"]).decode(errors="replace")
    return body, json_diff(before, orjson.loads(body))


async def publish_replay(channel: AbstractChannel, settings: CustomerSettings, row: dict, body: bytes, actor: str):
    """To the work queue only, confirmed; a retry starts afresh (no attempt count, no last error)."""
    headers = {k: v for k, v in row["headers"].items() if k not in (ATTEMPT_HEADER, LAST_ERROR_HEADER)}
    headers[REPLAYED_BY_HEADER] = actor
    try:
        async with asyncio.timeout(CONFIRM_TIMEOUT):
            confirmation = await channel.basic_publish(
                body,
                exchange=settings.retry_exchange,
                routing_key=settings.orders_queue,
                mandatory=True,
                properties=Basic.Properties(
                    content_type=row["content_type"] or "application/json",
                    delivery_mode=PERSISTENT,
                    message_id=row["message_id"] or (str(row["event_id"]) if row["event_id"] else None),
                    user_id=broker_user(channel),  # the consumer trusts its own service's user
                    headers=headers,
                ),
            )
    except Exception as exc:
        raise ReplayNotConfirmed(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(confirmation, Basic.Ack):
        raise ReplayNotConfirmed(f"answered {type(confirmation).__name__}")


def _result(row: dict, action: str, state: str) -> ActionResult:
    return ActionResult(id=row["id"], key=row["key"], event_id=row["event_id"], action=action, state=state)  # type: ignore[arg-type]


async def replay(
    channel: AbstractChannel | None,
    settings: CustomerSettings,
    dead_letter_id: int,
    actor: str,
    reason: str,
    edited: dict | None = None,
    untrusted: bool = False,
) -> ActionResult:
    async with transaction(APP) as conn:
        row = await repository.get_dead_letter(dead_letter_id, conn, lock=True)
        if row is None:
            raise DeadLetterNotFound(dead_letter_id)
        if row["state"] == "discarded":
            raise Conflict(f"Dead letter {dead_letter_id} was discarded; it is not replayed.")
        if row["reason"] == UNTRUSTED and not untrusted:
            raise Conflict(
                f"Dead letter {dead_letter_id} came from an untrusted sender ({row['sender']!r}): check where it came "
                "from, then replay it with `untrusted`; the replay vouches for it."
            )
        body, detail = bytes(row["body"]), {"state_before": row["state"]}
        if edited is not None:
            body, diff = edited_body(row, edited, settings)
            detail["diff"] = diff
        if channel is None or channel.is_closed:
            raise ReplayNotConfirmed("no broker connection")
        await publish_replay(channel, settings, row, body, actor)
        await repository.set_state(conn, dead_letter_id, "replayed", body if edited is not None else None)
        action = "edit_and_replay" if edited is not None else "replay"
        await repository.add_audit(conn, actor, action, row["key"], reason, detail)
    log.info("dead letter %s (%s) replayed by %s", row["id"], row["key"], actor)
    return _result(row, action, "replayed")


async def discard(dead_letter_id: int, actor: str, reason: str) -> ActionResult:
    async with transaction(APP) as conn:
        row = await repository.get_dead_letter(dead_letter_id, conn, lock=True)
        if row is None:
            raise DeadLetterNotFound(dead_letter_id)
        await repository.set_state(conn, dead_letter_id, "discarded")
        await repository.add_audit(conn, actor, "discard", row["key"], reason, {"state_before": row["state"]})
    return _result(row, "discard", "discarded")


async def bulk(
    action: str,
    channel: AbstractChannel | None,
    settings: CustomerSettings,
    filters: dict,
    actor: str,
    reason: str,
    dry_run: bool,
    limit: int,
    untrusted: bool = False,
) -> BulkResult:
    """Replay or discard a filter's worth of open dead letters, oldest first, one transaction each (one
    that fails is reported and the rest go on); a dry run changes nothing but the audit."""
    filters = {**filters, "state": "open"}
    ids = await repository.ids_matching(filters, limit)
    result = BulkResult(action=action, dry_run=dry_run, matched=len(ids), done=[], skipped=[], failed=[])
    for dead_letter_id in ids:
        row = await repository.get_dead_letter(dead_letter_id)
        if row is None:
            continue  # purged meanwhile
        if action == "replay" and row["reason"] == UNTRUSTED and not untrusted:
            result.skipped.append(_result(row, action, row["state"]))
        elif dry_run:
            result.done.append(_result(row, action, row["state"]))
        else:
            try:
                if action == "replay":
                    done = await replay(channel, settings, dead_letter_id, actor, reason, untrusted=untrusted)
                else:
                    done = await discard(dead_letter_id, actor, reason)
                result.done.append(done)
            except Exception as exc:
                result.failed.append({"id": dead_letter_id, "key": row["key"], "error": str(exc)})
    if dry_run:
        async with transaction(APP) as conn:
            detail = {"filter": filters, "would": [item.key for item in result.done], "matched": len(ids)}
            await repository.add_audit(
                conn, actor, f"{action}_dry_run", None, reason, orjson.loads(orjson.dumps(detail))
            )
    return result
