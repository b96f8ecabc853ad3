"""Every statement on the dead letters and their audit (actions.py says what they are for).

Filters are fixed SQL with NULL meaning "any": no statement is built from what a caller sends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient

from customer.db_config import APP
from shared.db import db
from shared.housekeeping import purge_in_batches
from shared.pagination import Position


@dataclass(frozen=True)
class DeadLetterRecord:
    """A dead letter as read off its message (mover.record_of), as the table takes it."""

    key: str
    event_id: uuid.UUID | None
    event_type: str | None
    customer_id: int | None
    reason: str
    error: str
    attempts: int
    failed_at: datetime
    occurrence: str
    message_id: str | None
    sender: str | None
    content_type: str | None
    headers: dict
    body: bytes
    by_broker: bool  # dead-lettered by the broker (the delivery limit), not by the consumer


SUMMARY = (
    "id, key, event_id, event_type, customer_id, reason, error, attempts, first_failed_at, last_failed_at, "
    "state, message_id, sender, created_at"
)
DETAIL = f"{SUMMARY}, content_type, headers, body, history"

# $1 reason, $2 event type, $3 customer, $4 state, $5 since, $6 until, $7 error
FILTER = """($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR event_type = $2)
  AND ($3::bigint IS NULL OR customer_id = $3) AND ($4::text IS NULL OR state = $4)
  AND ($5::timestamptz IS NULL OR last_failed_at >= $5) AND ($6::timestamptz IS NULL OR last_failed_at < $6)
  AND ($7::text IS NULL OR error = $7)"""
FILTER_FIELDS = ("reason", "event_type", "customer_id", "state", "since", "until", "error")

# One statement, so one transaction: the row is new, or it dead-lettered again (after a replay) and its history
# grows - unless this very dead-lettering is in it already (the queue delivered it again after a lost ack).
RECORD = """
INSERT INTO dead_letters (key, event_id, event_type, customer_id, reason, error, attempts, first_failed_at,
                          last_failed_at, message_id, sender, content_type, headers, body, state, history, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12::jsonb, $13, 'open', $14::jsonb, $8)
ON CONFLICT (key) DO UPDATE SET
    event_type = EXCLUDED.event_type, customer_id = EXCLUDED.customer_id, reason = EXCLUDED.reason,
    error = EXCLUDED.error, attempts = dead_letters.attempts + EXCLUDED.attempts,
    last_failed_at = EXCLUDED.last_failed_at, message_id = EXCLUDED.message_id, sender = EXCLUDED.sender,
    content_type = EXCLUDED.content_type, headers = EXCLUDED.headers, body = EXCLUDED.body, state = 'open',
    history = dead_letters.history || EXCLUDED.history
WHERE NOT dead_letters.history @> jsonb_build_array(jsonb_build_object('occurrence', $15::text))
RETURNING id
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _read(row: dict) -> dict:
    """jsonb arrives as text from asyncpg."""
    for name in ("headers", "history", "detail"):
        if isinstance(row.get(name), str):
            row[name] = orjson.loads(row[name])
    return row


def filter_args(filters: dict) -> list:
    return [filters.get(name) for name in FILTER_FIELDS]


async def record_dead_letter(r: DeadLetterRecord) -> bool:
    """Whether this dead-lettering is new (False: recorded before, by a delivery whose ack was lost)."""
    entry = {"at": r.failed_at.isoformat(), "reason": r.reason, "error": r.error, "attempts": r.attempts}
    written = await db(APP).execute_query_dict(
        RECORD,
        [
            r.key,
            r.event_id,
            r.event_type,
            r.customer_id,
            r.reason,
            r.error,
            r.attempts,
            r.failed_at,
            r.message_id,
            r.sender,
            r.content_type,
            _json(r.headers),
            r.body,
            _json([{**entry, "occurrence": r.occurrence}]),
            r.occurrence,
        ],
    )
    return bool(written)


async def list_dead_letters(filters: dict, limit: int, offset: int, after: Position | None) -> list[dict]:
    position = "(created_at, id) < ($10, $11)" if after else "TRUE"
    rows = await db(APP).execute_query_dict(
        f"SELECT {SUMMARY} FROM dead_letters WHERE {FILTER} AND {position} "
        "ORDER BY created_at DESC, id DESC LIMIT $8 OFFSET $9",
        [*filter_args(filters), limit, offset, *(after or ())],
    )
    return rows


async def count_dead_letters(filters: dict) -> int:
    _, rows = await db(APP).execute_query(f"SELECT count(*) FROM dead_letters WHERE {FILTER}", filter_args(filters))
    return rows[0][0]


async def get_dead_letter(
    dead_letter_id: int, conn: BaseDBAsyncClient | None = None, lock: bool = False
) -> dict | None:
    rows = await (conn or db(APP)).execute_query_dict(
        f"SELECT {DETAIL} FROM dead_letters WHERE id = $1" + (" FOR UPDATE" if lock else ""), [dead_letter_id]
    )
    return _read(rows[0]) if rows else None


async def ids_matching(filters: dict, limit: int) -> list[int]:
    """Oldest first: a bulk replay sends them in the order they failed."""
    rows = await db(APP).execute_query_dict(
        f"SELECT id FROM dead_letters WHERE {FILTER} ORDER BY created_at, id LIMIT $8", [*filter_args(filters), limit]
    )
    return [row["id"] for row in rows]


async def groups(filters: dict) -> list[dict]:
    return await db(APP).execute_query_dict(
        f"SELECT reason, error, count(*) AS count, min(first_failed_at) AS first_failed_at, "
        f"max(last_failed_at) AS last_failed_at FROM dead_letters WHERE {FILTER} "
        "GROUP BY reason, error ORDER BY count(*) DESC, reason, error LIMIT 500",
        filter_args(filters),
    )


async def set_state(conn: BaseDBAsyncClient, dead_letter_id: int, state: str, body: bytes | None = None) -> None:
    await conn.execute_query(
        "UPDATE dead_letters SET state = $2, body = coalesce($3, body) WHERE id = $1", [dead_letter_id, state, body]
    )


async def add_audit(
    conn: BaseDBAsyncClient, actor: str, action: str, key: str | None, reason: str, detail: dict
) -> int:
    rows = await conn.execute_query_dict(
        "INSERT INTO dead_letter_audit (at, actor, action, dead_letter_key, reason, detail) "
        "VALUES (now(), $1, $2, $3, $4, $5::jsonb) RETURNING id",
        [actor, action, key, reason, _json(detail)],
    )
    return rows[0]["id"]


async def record_read(actor: str, key: str) -> None:
    await add_audit(db(APP), actor, "show", key, "", {})


async def audit_of(key: str | None, limit: int) -> list[dict]:
    rows = await db(APP).execute_query_dict(
        "SELECT id, at, actor, action, dead_letter_key, reason, detail FROM dead_letter_audit "
        "WHERE $1::text IS NULL OR dead_letter_key = $1 ORDER BY at DESC, id DESC LIMIT $2",
        [key, limit],
    )
    return [_read(row) for row in rows]


PURGE_DEAD_LETTERS = """
DELETE FROM dead_letters WHERE id IN (
    SELECT id FROM dead_letters WHERE last_failed_at < $1 ORDER BY last_failed_at LIMIT $2)
"""
PURGE_AUDIT = """
DELETE FROM dead_letter_audit WHERE id IN (SELECT id FROM dead_letter_audit WHERE at < $1 ORDER BY at LIMIT $2)
"""


async def purge_dead_letters(before: datetime, batch: int) -> int:
    purged = await purge_in_batches(APP, "dead_letters", PURGE_DEAD_LETTERS, [before], batch)
    return purged + await purge_in_batches(APP, "dead_letter_audit", PURGE_AUDIT, [before], batch)
