"""customer/schemas.py: the customer rendered directly is the documented output model's dump."""

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import orjson
import pytest

from customer.schemas import CustomerOut, render_customer
from shared.http import to_json


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 12, 2, 11, 49, 28, 558869, tzinfo=UTC),
        datetime(2026, 12, 2, 11, 49, 28, tzinfo=UTC),
        datetime(2026, 12, 2, 11, 49, 28, 5, tzinfo=timezone(timedelta(hours=2))),
    ],
)
@pytest.mark.parametrize("email", ["ana@example.com", None])
def test_a_customer_rendered_directly_is_what_the_documented_model_dumps(created_at, email):
    row = SimpleNamespace(
        id=3,
        name="Ana Díaz",
        address="Calle 1 #2-3, Bogotá",
        email=email,
        orders_count=41,
        created_at=created_at,
        updated_at=created_at + timedelta(microseconds=7),
    )
    assert orjson.loads(to_json(render_customer(row))) == CustomerOut.model_validate(row).model_dump(mode="json")
