"""Idempotency-Key for POST /orders.

A key is claimed by inserting its row before any work (the primary key decides
races), completed in the same transaction as the order it created, and released
when the request fails, so a rejected request stores no key.
"""

import hashlib
import logging
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.timezone import now

from order.models import IdempotencyKey
from shared.problems import Conflict, ValidationFailed, field_error

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A claim older than this whose request never finished (a crashed worker) may be taken over.
ABANDONED_AFTER = timedelta(seconds=30)


class KeyReused(ValidationFailed):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used with a different request body.",
                         field_error(HEADER, "was used with a different body"))


class KeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still in progress; retry shortly.",
                         field_error(HEADER, "request in progress"))


def parse_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isprintable():
        raise ValidationFailed("Invalid Idempotency-Key.",
                               field_error(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable characters"))
    return value


def fingerprint(canonical_body: str) -> str:
    return hashlib.sha256(canonical_body.encode()).hexdigest()


async def claim(key: str, body_fingerprint: str) -> IdempotencyKey | None:
    """Claim the key for this request, or return the first request's completed key to replay."""
    try:
        await IdempotencyKey.create(key=key, fingerprint=body_fingerprint)
        return None
    except IntegrityError:
        pass
    existing = await IdempotencyKey.get_or_none(key=key)
    if existing is None:  # released by a failed first request a moment ago
        raise KeyInFlight()
    if existing.fingerprint != body_fingerprint:
        raise KeyReused()
    if existing.status_code is not None:
        return existing
    taken_over = await IdempotencyKey.filter(
        key=key, status_code=None, created_at=existing.created_at, created_at__lt=now() - ABANDONED_AFTER
    ).update(created_at=now())
    if not taken_over:
        raise KeyInFlight()
    return None


async def release(key: str) -> None:
    try:
        await IdempotencyKey.filter(key=key, status_code=None).delete()
    except Exception:  # the database is likely down; the claim is taken over once abandoned
        log.warning("could not release idempotency key %r", key, exc_info=True)
