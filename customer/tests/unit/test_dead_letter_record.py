"""What the mover reads off a dead letter: its key, reason, attempts and the id of this dead-lettering."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from pamqp.commands import Basic

from customer.dead_letters.actions import json_diff
from customer.dead_letters.mover import record_of
from customer.settings import CustomerSettings
from shared.testing.api import order_created_event

SETTINGS = CustomerSettings(orders_queue="q", delivery_limit=5)


def delivery(body: bytes, message_id: str | None = None, **headers):
    properties = Basic.Properties(message_id=message_id, user_id="order_service", headers=headers)
    return SimpleNamespace(body=body, header=SimpleNamespace(properties=properties))


def test_the_consumers_dead_letter_is_keyed_by_its_event_id_with_its_kind_and_attempts():
    event_id = str(uuid.uuid4())
    message = delivery(
        order_created_event(7, event_id),
        event_id,
        **{
            "x-dead-letter-kind": "retries_exhausted",
            "x-dead-letter-reason": "failed 3 times: boom",
            "x-retry-attempt": 2,
            "x-dead-letter-id": "occ",
            "x-request-id": "r1",
        },
    )
    record = record_of(message, SETTINGS)  # type: ignore[arg-type]
    assert (record.key, record.customer_id, record.event_type) == (event_id, 7, "order.created")
    assert (record.reason, record.error, record.attempts, record.occurrence) == (
        "retries_exhausted",
        "failed 3 times: boom",
        3,
        "occ",
    )
    assert record.headers == {"x-retry-attempt": 2, "x-request-id": "r1"} and not record.by_broker


def test_the_brokers_dead_letter_past_the_delivery_limit_names_it_and_its_dead_lettering():
    death = {"queue": "q", "reason": "delivery_limit", "count": 1, "time": datetime(2026, 1, 1, tzinfo=UTC)}
    record = record_of(delivery(order_created_event(7), **{"x-death": [death], "x-delivery-count": 5}), SETTINGS)  # type: ignore[arg-type]
    assert record.reason == "delivery_limit" and record.attempts == 6 and record.by_broker
    assert "2026-01-01" in record.occurrence and "x-death" not in record.headers


def test_a_message_without_an_event_id_is_keyed_by_its_message_id_and_body_or_its_body_alone():
    kind = {"x-dead-letter-kind": "invalid_event", "x-dead-letter-reason": "invalid"}
    first, second = (record_of(delivery(body, "m", **kind), SETTINGS) for body in (b"a", b"b"))  # type: ignore[arg-type]
    assert first.key.startswith("message:m:") and first.key != second.key and first.event_id is None
    assert record_of(delivery(b"a", **kind), SETTINGS).key.startswith("body:")  # type: ignore[arg-type]
    assert record_of(delivery(b"a", **kind), SETTINGS).key == record_of(delivery(b"a", **kind), SETTINGS).key  # type: ignore[arg-type]


def test_the_diff_names_each_changed_leaf():
    before = {"a": 1, "data": {"price": "x", "gone": 1}}
    after = {"a": 1, "data": {"price": "1.00", "new": 2}}
    assert json_diff(before, after) == [
        {"path": "/data/gone", "from": 1, "to": None},
        {"path": "/data/new", "from": None, "to": 2},
        {"path": "/data/price", "from": "x", "to": "1.00"},
    ]
