from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from order.schemas import CreateOrderBody, OrderOut, render_order
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
    class Row:
        id, customer_id, product_name, quantity, price, status = 1, 1, "x", 3, Decimal("19.99"), "created"
        created_at = updated_at = __import__("datetime").datetime(2026, 1, 1)

    rendered = render_order(Row)
    assert rendered["price"] == "19.99" and rendered["total"] == "59.97"


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 12, 2, 11, 49, 28, 558869, tzinfo=UTC),
        datetime(2026, 12, 2, 11, 49, 28, tzinfo=UTC),
        datetime(2026, 12, 2, 11, 49, 28, 5, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
@pytest.mark.parametrize("price, quantity", [(Decimal("19.99"), 3), (Decimal("1200.00"), 1), (Decimal("0.5"), 7)])
def test_an_order_rendered_directly_is_what_the_documented_model_dumps(created_at, price, quantity):
    class Row:
        id, customer_id, product_name, status = 5, 2, "Laptop", "paid"

    Row.price, Row.quantity, Row.created_at = price, quantity, created_at
    Row.updated_at = created_at + timedelta(seconds=1)
    fields = {name: getattr(Row, name) for name in OrderOut.model_fields if name != "total"}
    assert orjson.loads(to_json(render_order(Row))) == OrderOut(**fields, total=price * quantity).model_dump(
        mode="json"
    )
