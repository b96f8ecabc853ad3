"""Idempotency-Key for POST /orders: claim, replay, completion and release, all here.

A key is claimed by inserting its row before any work (the primary key decides races), completed in
the same statement that stores the order (`completion`), and released when the request fails, so a
rejected request stores no key. Expired keys are purged by the housekeeping (order/housekeeping.py).
"""

import hashlib
import logging
from datetime import timedelta

from tortoise.timezone import now

from order import repository
from order.repository import KeyCompletion
from shared.problems import Conflict, ValidationFailed, field_error, problem_type

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# What a completed key answers: the first request's 201 and its body, byte for byte.
COMPLETED_STATUS = 201
# A claim older than this whose request never finished (a crashed worker) may be taken over.
ABANDONED_AFTER = timedelta(seconds=30)


class KeyReused(ValidationFailed):
    """The Idempotency-Key was used before with a different request body."""

    type = problem_type("idempotency-key-reused")

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with a different request body.",
            field_error(HEADER, "was used with a different body"),
        )


class KeyInFlight(Conflict):
    """A request with this Idempotency-Key is still in progress: retry shortly for its answer."""

    type = problem_type("idempotency-key-in-flight")

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still in progress; retry shortly.",
            field_error(HEADER, "request in progress"),
        )


def parse_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isprintable():
        raise ValidationFailed(
            "Invalid Idempotency-Key.", field_error(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable characters")
        )
    return value


def scoped(key: str, actor: str | None) -> str:
    """The key as stored: the same key from two callers is two keys (with AUTH_MODE=off there is one caller).
    The separator is no printable character, so no key and `sub` pair can pass for another."""
    return key if actor is None else f"{actor}\x1f{key}"


class Claim:
    """One request's hold on its key."""

    def __init__(self, key: str, canonical_body: str) -> None:
        self.key = key
        self.fingerprint = hashlib.sha256(canonical_body.encode()).hexdigest()

    async def take(self) -> bytes | None:
        """Claim the key for this request, or return the first request's response body to replay."""
        if await repository.insert_key(self.key, self.fingerprint):
            return None
        existing = await repository.get_key(self.key)
        if existing is None:  # released by a failed first request a moment ago
            raise KeyInFlight()
        if existing.fingerprint != self.fingerprint:
            raise KeyReused()
        if existing.status_code is not None:
            return existing.response.encode()
        if not await repository.take_over_key(existing, abandoned_before=now() - ABANDONED_AFTER):
            raise KeyInFlight()
        return None

    def completion(self, body: bytes) -> KeyCompletion:
        """What the statement that stores the order also stores for the key."""
        return KeyCompletion(self.key, COMPLETED_STATUS, body.decode())

    async def release(self) -> None:
        try:
            await repository.delete_unfinished_key(self.key)
        except Exception:  # the database is likely down; the claim is taken over once abandoned
            log.warning("could not release idempotency key %r", self.key, exc_info=True)
