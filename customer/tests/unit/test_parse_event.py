"""What the consumer refuses before touching the database, and why (each reason a fixed metric label)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from customer.events.incoming import FUTURE_TOLERANCE, parse_event
from customer.events.redelivery import Poison
from customer.metrics import DEAD_LETTER_REASONS

WINDOW = timedelta(days=7)


def body(**changes) -> bytes:
    event = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "event_type": "order.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {"order_id": 1, "customer_id": 2},
    }
    return json.dumps({**event, **changes}).encode()


def test_a_good_event_parses():
    assert parse_event(body(), WINDOW).data.customer_id == 2


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"not json", "invalid_event"),
        (body(data={"order_id": 1}), "invalid_event"),
        (body(event_type="order.status_changed"), "unexpected_event_type"),
        (body(occurred_at=(datetime.now(UTC) - timedelta(days=8)).isoformat()), "stale_event"),
        (body(occurred_at="2999-01-01T00:00:00"), "invalid_event"),
    ],
)
def test_poison_is_named_by_a_fixed_kind(raw, kind):
    with pytest.raises(Poison) as error:
        parse_event(raw, WINDOW)
    assert error.value.kind == kind and error.value.kind in DEAD_LETTER_REASONS


def test_an_event_inside_the_window_is_not_stale_even_without_a_time_zone():
    naive = (datetime.now(UTC) - timedelta(days=6)).replace(tzinfo=None).isoformat()
    assert parse_event(body(occurred_at=naive), WINDOW)


def test_an_event_dated_beyond_the_tolerance_is_invalid():
    ahead = (datetime.now(UTC) + FUTURE_TOLERANCE + timedelta(minutes=1)).isoformat()
    with pytest.raises(Poison) as error:
        parse_event(body(occurred_at=ahead), WINDOW)
    assert error.value.kind == "invalid_event"


def test_a_clock_a_little_ahead_of_ours_is_tolerated():
    ahead = (datetime.now(UTC) + FUTURE_TOLERANCE - timedelta(seconds=30)).isoformat()
    assert parse_event(body(occurred_at=ahead), WINDOW)
