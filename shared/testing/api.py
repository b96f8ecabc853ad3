"""Contract-level helpers for tests: they speak HTTP only, like any client."""

import uuid
from datetime import UTC, datetime

import orjson

from shared.testing.plugin import eventually, unique


def order_created_event(customer_id: int, event_id: str | None = None) -> bytes:
    """An `order.created` message body as the order service publishes it."""
    return orjson.dumps(
        {
            "schema_version": 1,
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": "order.created",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {
                "order_id": 1,
                "customer_id": customer_id,
                "product_name": "Laptop",
                "quantity": 1,
                "price": "1200.00",
                "status": "created",
            },
        }
    )


async def create_customer(client, expected_status: int = 201, **fields) -> dict:
    body = {"name": unique("Ada"), "address": "12 Analytical St", "email": f"{unique('ada')}@example.com"}
    body.update(fields)
    response = await client.post("/customers", json={"customer": body})
    data = await response.json()
    assert response.status == expected_status, data
    return data


async def get_json(client, path: str, expected_status: int = 200, **kwargs) -> dict:
    response = await client.get(path, **kwargs)
    data = await response.json()
    assert response.status == expected_status, data
    return data


async def assert_problem(response, status: int, field: str | None = None) -> dict:
    """A problem+json of `status`, naming `field` when given."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert "Traceback" not in str(problem)
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]], problem
    return problem


async def becomes_ready(client) -> None:
    """/ready answers 200 (within the second an answer may be kept: shared/recent.py)."""

    async def ready() -> None:
        assert (await client.get("/ready")).status == 200

    await eventually(ready)


def changes(dead_letter: dict) -> list[dict]:
    """A dead letter's audit without the reads of it (each GET of one adds a `show`): what was done to it."""
    return [entry for entry in dead_letter["audit"] if entry["action"] != "show"]
