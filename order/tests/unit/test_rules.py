"""Pure rules of the order service: event ids, Idempotency-Key parsing and fingerprints."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from order import events
from order.domain import CREATED, PAID
from order.idempotency import MAX_KEY_LENGTH, Claim, parse_key
from order.models import Order
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent
from shared.problems import ValidationFailed


def an_order(**changes) -> Order:
    created = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    fields = dict(
        id=7,
        customer_id=1,
        product_name="Laptop",
        quantity=1,
        price=Decimal("1200.00"),
        status=CREATED,
        created_at=created,
        updated_at=created,
    )
    return Order(**{**fields, **changes})


def test_an_event_id_is_the_same_each_time_it_is_derived_so_a_republish_is_a_duplicate():
    assert events.order_created(an_order(), "a").event_id == events.order_created(an_order(), "b").event_id


def test_event_ids_differ_by_order_status_type_and_database_lifetime():
    first = events.order_created(an_order(), "r").event_id
    assert events.order_created(an_order(id=8), "r").event_id != first
    assert events.status_changed(an_order(status=PAID), CREATED, "r").event_id != first
    assert events.outbox_event(an_order(), ORDER_STATUS_CHANGED, "r").event_id != first
    recreated = an_order(created_at=datetime(2026, 12, 2, tzinfo=UTC))  # same id in a new database
    assert events.order_created(recreated, "r").event_id != first


def test_event_ids_stay_what_earlier_releases_derived_so_a_republish_after_an_upgrade_is_a_duplicate():
    assert events.event_id(an_order(), ORDER_CREATED) == uuid.UUID("46577e2b-7751-5d32-861e-bdd6fd65d784")
    paid = an_order(status=PAID)
    assert events.event_id(paid, ORDER_STATUS_CHANGED) == uuid.UUID("1f09abf4-3de1-5406-be4e-5626e5f62b16")


def test_a_status_change_is_published_in_the_documented_shape():
    payload = events.status_changed(an_order(status=PAID), CREATED, "r").payload
    assert payload == (
        '{"schema_version":1,"event_id":"1f09abf4-3de1-5406-be4e-5626e5f62b16","event_type":"order.status_changed",'
        '"occurred_at":"2026-12-01T12:00:00Z","data":{"order_id":7,"customer_id":1,"product_name":"Laptop",'
        '"quantity":1,"price":"1200.00","status":"paid","previous_status":"created"}}'
    )
    assert OrderEvent.model_validate_json(payload).data.previous_status == CREATED


def test_the_payload_is_the_event_as_published():
    event = events.order_created(an_order(), "req-1")
    assert event.event_type == ORDER_CREATED and event.request_id == "req-1"
    assert '"price":"1200.00"' in event.payload and "previous_status" not in event.payload


@pytest.mark.parametrize("value", ["", "x" * (MAX_KEY_LENGTH + 1), "tab\there", "new\nline"])
def test_an_unusable_idempotency_key_is_a_422(value):
    with pytest.raises(ValidationFailed) as error:
        parse_key(value)
    assert error.value.errors[0]["field"] == "Idempotency-Key"


def test_a_missing_key_means_no_idempotency_and_a_good_one_is_kept_as_sent():
    assert parse_key(None) is None
    assert parse_key("order-2026-12-01 #1") == "order-2026-12-01 #1"


def test_a_key_remembers_its_body_by_fingerprint():
    assert Claim("k", '{"a":1}').fingerprint == Claim("other", '{"a":1}').fingerprint
    assert Claim("k", '{"a":1}').fingerprint != Claim("k", '{"a":2}').fingerprint
    assert Claim("k", "{}").completion(b'{"id":1}').response == '{"id":1}'
