"""Pure rules of the order service: event ids, Idempotency-Key parsing and fingerprints."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from order import events
from order.domain import CREATED, PAID
from order.idempotency import MAX_KEY_LENGTH, Claim, parse_key
from order.models import Order
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent, OrderEventData
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


@pytest.mark.parametrize("microsecond", [0, 1, 123456])
@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=-5)), None])
def test_an_event_id_is_uuid5_of_type_order_status_and_created_at_as_first_derived(microsecond, zone):
    """Ids of events written before the derivation was made cheaper must come out the same, or an order
    republished after an upgrade would be counted twice."""
    created = datetime(2026, 12, 1, 12, 0, 5, microsecond, tzinfo=zone)
    cases = [(an_order(created_at=created), ORDER_CREATED), (an_order(status=PAID), ORDER_STATUS_CHANGED)]
    for order, event_type in cases:
        name = f"{event_type}:{order.id}:{order.status}:{order.created_at.isoformat()}"
        assert events.event_id(order, event_type) == uuid.uuid5(events.EVENT_ID_NAMESPACE, name)


@pytest.mark.parametrize("microsecond", [0, 123456])
@pytest.mark.parametrize("previous", [None, CREATED])
def test_the_payload_written_directly_is_the_event_model_as_pydantic_dumps_it(microsecond, previous):
    order = an_order(status=PAID if previous else CREATED, price=Decimal("19.90"))
    order.updated_at = order.updated_at.replace(microsecond=microsecond)
    row = events.outbox_event(order, ORDER_STATUS_CHANGED if previous else ORDER_CREATED, "r", previous)
    model = OrderEvent(
        event_id=row.event_id,
        event_type=row.event_type,
        occurred_at=order.updated_at,
        data=OrderEventData(
            order_id=order.id,
            customer_id=order.customer_id,
            product_name=order.product_name,
            quantity=order.quantity,
            price=order.price,
            status=order.status,
            previous_status=previous,
        ),
    )
    assert row.payload == model.model_dump_json(exclude_none=True)


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
