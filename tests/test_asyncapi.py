"""The AsyncAPI documents: valid AsyncAPI 3.0, and true to the code on both sides of the wire.

The AsyncAPI 3.0 JSON schema is vendored in `asyncapi_schema/` (from the AsyncAPI Initiative's
`@asyncapi/specs` 6.11.1, `schemas/3.0.0-without-$id.json`, Apache-2.0): no PyPI package ships it,
and the tests must run offline. What the order service really publishes is checked against its document
by every test that taps the events (conftest.py's `event_tap`).
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from customer.asyncapi import customer_asyncapi
from customer.events.incoming import parse_event
from customer.settings import CustomerSettings
from order import events
from order.asyncapi import order_asyncapi
from order.domain import STATUSES
from order.settings import OrderSettings
from shared.asyncapi import message_payloads
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED

ASYNCAPI_SCHEMA = json.loads((Path(__file__).parent / "asyncapi_schema" / "asyncapi-3.0.0.json").read_text())
DOCUMENTS = {"customer": customer_asyncapi, "order": order_asyncapi}


@pytest.mark.parametrize("service", DOCUMENTS)
def test_the_document_is_valid_asyncapi_3_0(service):
    document = DOCUMENTS[service]()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft7Validator(ASYNCAPI_SCHEMA).iter_errors(document)]
    assert errors == []


def test_the_vendored_schema_does_reject_a_broken_document():
    document = order_asyncapi()
    document["operations"]["publishOrderCreated"]["action"] = "publish"  # AsyncAPI 2's word, not 3's
    assert not Draft7Validator(ASYNCAPI_SCHEMA).is_valid(document)


def test_the_order_service_publishes_both_events_to_its_exchange():
    document = order_asyncapi()
    assert {op["action"] for op in document["operations"].values()} == {"send"}
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"] for c in document["channels"].values()}
    assert exchanges == {"orders"}
    assert {c["address"] for c in document["channels"].values()} == {ORDER_CREATED, ORDER_STATUS_CHANGED}


def test_the_customer_service_consumes_from_its_queues():
    document = customer_asyncapi()
    assert document["operations"]["consumeOrderCreated"]["action"] == "receive"
    assert {channel["address"] for channel in document["channels"].values()} == {
        "customer.orders",
        "customer.orders.dlq",
        "customer.orders.retry.5s",
        "customer.orders.retry.30s",
        "customer.orders.retry.120s",
        "customer.orders.retry.300s",
    }


def test_the_documents_follow_the_settings_they_are_given():
    customer = customer_asyncapi(CustomerSettings.model_construct(orders_queue="q.test"))
    assert customer["channels"]["customerOrdersDeadLetter"]["address"] == "q.test.dlq"
    order = order_asyncapi(OrderSettings.model_construct(events_exchange="orders.test"))
    assert order["channels"]["orderStatusChanged"]["bindings"]["amqp"]["exchange"]["name"] == "orders.test"


def test_producer_and_consumer_document_one_event_schema():
    assert customer_asyncapi()["components"]["schemas"] == order_asyncapi()["components"]["schemas"]


@dataclass
class Order:
    id: int
    status: str
    customer_id: int = 3
    product_name: str = "Desk"
    quantity: int = 2
    price: Decimal = Decimal("19.99")
    created_at: datetime = datetime(2026, 3, 1, tzinfo=UTC)
    updated_at: datetime = datetime(2026, 3, 2, tzinfo=UTC)


def validator(event_type: str) -> Draft202012Validator:
    schema = message_payloads(order_asyncapi(), "orderCreated" if event_type == ORDER_CREATED else "orderStatusChanged")
    return Draft202012Validator(schema[event_type], format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("status", STATUSES)
def test_what_the_outbox_writes_in_every_status_matches_the_document(status):
    order = Order(id=11, status=status)
    for event_type, previous in ((ORDER_CREATED, None), (ORDER_STATUS_CHANGED, "created")):
        body = json.loads(events.payload(order, event_type, events.event_id(order, event_type), previous))
        errors = [e.message for e in validator(event_type).iter_errors(body)]
        assert errors == [], (event_type, body)


def test_a_message_of_the_other_type_or_without_an_order_id_does_not_match():
    body = json.loads(
        events.payload(Order(id=1, status="created"), ORDER_CREATED, events.event_id(Order(1, "x"), ORDER_CREATED))
    )
    assert not validator(ORDER_STATUS_CHANGED).is_valid(body)
    del body["data"]["order_id"]
    assert not validator(ORDER_CREATED).is_valid(body)


@pytest.mark.parametrize("service", DOCUMENTS)
def test_every_example_is_valid_and_the_consumer_accepts_it(service):
    document = DOCUMENTS[service]()
    for channel in document["channels"]:
        for name, schema in message_payloads(document, channel).items():
            message = next(m for m in document["components"]["messages"].values() if m["name"] == name)
            for example in message.get("examples", ()):
                assert Draft202012Validator(schema).is_valid(example["payload"]), (channel, name)
                if name == ORDER_CREATED:
                    parsed = parse_event(json.dumps(example["payload"]).encode(), timedelta(days=3650))
                    assert parsed.event_type == ORDER_CREATED


@pytest.mark.parametrize("service", DOCUMENTS)
def test_every_schema_and_field_of_the_events_is_described(service):
    for name, schema in DOCUMENTS[service]()["components"]["schemas"].items():
        assert schema.get("description"), name
        for field, prop in schema["properties"].items():
            assert prop.get("description"), f"{name}.{field}"
