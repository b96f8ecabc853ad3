"""The AsyncAPI document: valid AsyncAPI 3.0, true to the event model, and committed as generated.

The AsyncAPI 3.0 JSON schema is vendored in `asyncapi_schema/` (from the AsyncAPI Initiative's
`@asyncapi/specs` 6.11.1, `schemas/3.0.0-without-$id.json`, Apache-2.0): no PyPI package ships it,
and the tests must run offline.
"""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from customer.asyncapi import asyncapi_document, render
from customer.settings import CustomerSettings
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent, OrderEventData

ROOT = Path(__file__).resolve().parents[3]
ASYNCAPI_SCHEMA = json.loads((Path(__file__).parent / "asyncapi_schema" / "asyncapi-3.0.0.json").read_text())


def test_the_document_is_valid_asyncapi_3_0():
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft7Validator(ASYNCAPI_SCHEMA).iter_errors(asyncapi_document())
    ]
    assert errors == []


def test_the_vendored_schema_does_reject_a_broken_document():
    document = asyncapi_document()
    document["operations"]["publishOrderCreated"]["action"] = "publish"  # AsyncAPI 2's word, not 3's
    assert not Draft7Validator(ASYNCAPI_SCHEMA).is_valid(document)


def test_the_committed_copy_is_current():
    assert (ROOT / "infra" / "asyncapi.json").read_text() == render(), (
        "infra/asyncapi.json is stale: run `python -m customer.asyncapi > infra/asyncapi.json`"
    )


def test_channels_name_the_contract_topology():
    document = asyncapi_document()
    exchange = document["channels"]["orderCreated"]["bindings"]["amqp"]["exchange"]
    assert exchange == {"name": "orders", "type": "topic", "durable": True, "autoDelete": False}
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        ORDER_CREATED,
        ORDER_STATUS_CHANGED,
        "customer.orders",
        "customer.orders.dlq",
        "customer.orders.retry.5s",
        "customer.orders.retry.30s",
        "customer.orders.retry.120s",
        "customer.orders.retry.300s",
    }


def test_the_document_follows_the_settings_it_is_given():
    settings = CustomerSettings.model_construct(events_exchange="orders.test", orders_queue="q.test")
    channels = asyncapi_document(settings)["channels"]
    assert channels["orderStatusChanged"]["bindings"]["amqp"]["exchange"]["name"] == "orders.test"
    assert channels["customerOrdersDeadLetter"]["address"] == "q.test.dlq"


def event(event_type: str) -> dict:
    """An event as the outbox stores and publishes it."""
    model = OrderEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        occurred_at=datetime.now(UTC),
        data=OrderEventData(
            order_id=7, customer_id=1, product_name="Laptop", quantity=1, price=Decimal("1200.00"), status="created"
        ),
    )
    return json.loads(model.model_dump_json(exclude_none=True))


def payload_validator(message: str) -> Draft202012Validator:
    document = asyncapi_document()
    payload = document["components"]["messages"][message]["payload"]
    return Draft202012Validator(
        {**payload, "components": document["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize(
    ("message", "event_type"), [("orderCreated", ORDER_CREATED), ("orderStatusChanged", ORDER_STATUS_CHANGED)]
)
def test_a_published_event_matches_its_message_payload(message, event_type):
    validator = payload_validator(message)
    assert validator.is_valid(event(event_type))
    other = ORDER_STATUS_CHANGED if event_type == ORDER_CREATED else ORDER_CREATED
    assert not validator.is_valid(event(other))
    broken = event(event_type)
    del broken["data"]["order_id"]
    assert not validator.is_valid(broken)
