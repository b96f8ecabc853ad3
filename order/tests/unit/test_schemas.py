from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import orjson
import pytest
from pydantic import ValidationError

from order.schemas import CreateOrderBody, OrderOut
from shared.http import to_json


def parse(**fields):
    order = {"customer_id": 1, "product_name": "Laptop", "quantity": 1, "price": 1200, **fields}
    return CreateOrderBody.model_validate({"order": order}).order


@pytest.mark.parametrize(
    "price, stored", [(1200, "1200.00"), ("1200", "1200.00"), ("19.99", "19.99"), (19.99, "19.99"), ("0.01", "0.01")]
)
def test_price_is_accepted_as_number_or_string_and_kept_to_the_cent(price, stored):
    assert parse(price=price).price == Decimal(stored)
    assert str(parse(price=price).price) == stored


@pytest.mark.parametrize(
    "fields",
    [
        {"price": 0},
        {"price": -1},
        {"price": "1.005"},
        {"price": "1.500"},
        {"price": "1e3"},
        {"price": " 12"},
        {"price": "abc"},
        {"price": "NaN"},
        {"price": True},
        {"price": 10**12},
        {"quantity": 0},
        {"quantity": "2"},
        {"quantity": 1.5},
        {"quantity": True},
        {"quantity": 10_001},
        {"customer_id": "1"},
        {"customer_id": 0},
        {"customer_id": 2**31},
        {"product_name": ""},
        {"product_name": "x" * 201},
        {"status": "paid"},
        {"extra": 1},
    ],
)
def test_invalid_orders_are_rejected(fields):
    with pytest.raises(ValidationError):
        parse(**fields)


def test_total_is_price_times_quantity_as_a_two_place_string():
    order = SimpleNamespace(
        id=1,
        customer_id=1,
        product_name="x",
        quantity=3,
        price=Decimal("19.99"),
        status="created",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    rendered = orjson.loads(to_json(OrderOut.model_validate(order)))
    assert rendered["price"] == "19.99" and rendered["total"] == "59.97"
    assert rendered["created_at"] == "2026-01-01T00:00:00Z"
