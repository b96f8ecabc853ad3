import asyncio
from datetime import datetime
from decimal import Decimal

import orjson
import pytest
from tortoise.connection import get_connection

from order.db_config import APP
from order.models import OutboxEvent
from shared.db import db, transaction, use_app_orm
from shared.testing.api import assert_problem, create_customer, get_json
from shared.testing.plugin import eventually


def order_body(for_customer: int, **fields) -> dict:
    return {
        "order": {
            "customer_id": for_customer,
            "product_name": "Laptop",
            "quantity": 1,
            "price": 1200,
            "status": "created",
            **fields,
        }
    }


async def test_the_readme_example_creates_an_order_with_the_customer_embedded(order_client, customer_api):
    customer = await create_customer(customer_api, name="Juan Guauque", address="Bogotá")
    response = await order_client.post("/orders", json=order_body(customer["id"]))
    assert response.status == 201, await response.text()
    order = await response.json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["price"] == "1200.00" and order["total"] == "1200.00" and order["status"] == "created"
    assert order["customer"] == {
        "id": customer["id"],
        "name": "Juan Guauque",
        "address": "Bogotá",
        "orders_count": customer["orders_count"],
    }
    stored = await get_json(order_client, f"/orders/{order['id']}")
    assert "customer" not in stored
    assert stored == {k: v for k, v in order.items() if k != "customer"}


async def test_the_order_is_counted_once_by_the_customer_service(order_client, customer_api):
    customer = await create_customer(customer_api)
    response = await order_client.post("/orders", json=order_body(customer["id"]))
    assert response.status == 201

    async def counted():
        assert (await get_json(customer_api, f"/customers/{customer['id']}"))["orders_count"] == 1

    await eventually(counted)


async def test_unknown_customer_is_422_on_customer_id_and_stores_nothing(order_client, customer_api):
    before = (await get_json(order_client, "/orders"))["total"]
    response = await order_client.post("/orders", json=order_body(2147483000))
    await assert_problem(response, 422, field="customer_id")
    assert (await get_json(order_client, "/orders"))["total"] == before


async def test_money_is_exact(order_client, customer_api):
    customer = await create_customer(customer_api)
    response = await order_client.post("/orders", json=order_body(customer["id"], price="19.99", quantity=3))
    order = await response.json()
    assert order["price"] == "19.99" and order["total"] == "59.97"
    assert Decimal(order["total"]) == Decimal("19.99") * 3


async def place(order_client, customer_id: int, **fields) -> dict:
    response = await order_client.post("/orders", json=order_body(customer_id, **fields))
    assert response.status == 201, await response.text()
    return await response.json()


async def test_status_defaults_to_created(order_client, customer_api):
    customer = await create_customer(customer_api)
    body = order_body(customer["id"])
    del body["order"]["status"]
    response = await order_client.post("/orders", json=body)
    assert (await response.json())["status"] == "created"


async def test_list_filters_by_customer_and_status_newest_first(order_client, customer_api):
    customer, other = await create_customer(customer_api), await create_customer(customer_api)
    first = await place(order_client, customer["id"])
    second = await place(order_client, customer["id"])
    await place(order_client, other["id"])
    await order_client.patch(f"/orders/{first['id']}", json={"order": {"status": "paid"}})

    page = await get_json(order_client, f"/orders?customer_id={customer['id']}")
    assert [o["id"] for o in page["items"]] == [second["id"], first["id"]] and page["total"] == 2
    paid = await get_json(order_client, f"/orders?customer_id={customer['id']}&status=paid")
    assert [o["id"] for o in paid["items"]] == [first["id"]]
    same = await get_json(order_client, f"/customers/{customer['id']}/orders")
    assert same == page
    one = await get_json(order_client, f"/customers/{customer['id']}/orders?limit=1&offset=1")
    assert [o["id"] for o in one["items"]] == [first["id"]] and one["total"] == 2 and one["limit"] == 1
    head = await get_json(order_client, f"/customers/{customer['id']}/orders?limit=1")
    beyond = await get_json(order_client, f"/customers/{customer['id']}/orders?offset=5")
    assert head["total"] == 2 and beyond["items"] == [] and beyond["total"] == 2  # counted: the page cannot tell


async def walk(client, path: str) -> list[dict]:
    """Every page of a list from `path` on, by its `next` cursors and Link headers."""
    pages = []
    while path:
        response = await client.get(path)
        page = await response.json()
        assert response.status == 200, page
        pages.append(page)
        link = response.headers.get("Link")
        assert (link is not None) == (page["next"] is not None)
        path = link.removeprefix("<").removesuffix('>; rel="next"') if link else None
    return pages


async def test_cursors_walk_a_filtered_list_without_skipping_or_repeating_ties(order_client, customer_api):
    customer, other = await create_customer(customer_api), await create_customer(customer_api)
    for _ in range(5):
        await place(order_client, customer["id"])
    await place(order_client, other["id"])
    use_app_orm(order_client.app)  # three share one created_at: the id breaks the tie
    await db(APP).execute_query(
        "UPDATE orders SET created_at = now() WHERE id IN "
        "(SELECT id FROM orders WHERE customer_id = $1 ORDER BY id LIMIT 3)",
        [customer["id"]],
    )
    everything = await get_json(order_client, f"/orders?customer_id={customer['id']}")

    pages = await walk(order_client, f"/orders?customer_id={customer['id']}&limit=2")
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [o["id"] for page in pages for o in page["items"]] == [o["id"] for o in everything["items"]]
    assert pages[0]["total"] == 5 and pages[0]["offset"] == 0
    assert all("total" not in page and "offset" not in page for page in pages[1:])
    assert pages[-1]["next"] is None
    # A cursor alone keeps the list's filters; a limit given with it wins.
    rest = await get_json(order_client, f"/orders?cursor={pages[0]['next']}&limit=10")
    assert [o["id"] for o in rest["items"]] == [o["id"] for o in everything["items"][2:]]


async def test_count_false_leaves_the_total_out(order_client):
    page = await get_json(order_client, "/orders?count=false&limit=1")
    assert "total" not in page and page["offset"] == 0 and page["limit"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=eyJ4IjoxfQ", "cursor"),  # JSON, but not a cursor
        ("offset=10001", "offset"),
        ("customer_id=abc", "customer_id"),
        ("customer_id=0", "customer_id"),
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
    ],
)
async def test_bad_list_filters_are_422(order_client, query, field):
    await assert_problem(await order_client.get(f"/orders?{query}"), 422, field=field)


async def test_get_missing_order_is_404(order_client):
    await assert_problem(await order_client.get("/orders/2147483000"), 404)
    await assert_problem(await order_client.get("/orders/99999999999999"), 404)
    await assert_problem(await order_client.get("/orders/" + "7" * 5000), 404)


@pytest.mark.parametrize("path", [("paid",), ("cancelled",), ("paid", "shipped", "delivered"), ("paid", "cancelled")])
async def test_allowed_transitions_change_the_status(order_client, customer_api, path):
    order = await place(order_client, (await create_customer(customer_api))["id"])
    for status in path:
        response = await order_client.patch(f"/orders/{order['id']}", json={"order": {"status": status}})
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == status
    assert (await get_json(order_client, f"/orders/{order['id']}"))["status"] == path[-1]


@pytest.mark.parametrize(
    "path, forbidden",
    [
        ((), "created"),
        ((), "shipped"),
        ((), "delivered"),
        (("paid",), "paid"),
        (("paid",), "created"),
        (("paid", "shipped"), "cancelled"),
        (("cancelled",), "paid"),
        (("paid", "shipped", "delivered"), "shipped"),
    ],
)
async def test_forbidden_transitions_are_409_naming_the_current_status(order_client, customer_api, path, forbidden):
    order = await place(order_client, (await create_customer(customer_api))["id"])
    for status in path:
        await order_client.patch(f"/orders/{order['id']}", json={"order": {"status": status}})
    current = path[-1] if path else "created"
    response = await order_client.patch(f"/orders/{order['id']}", json={"order": {"status": forbidden}})
    problem = await assert_problem(response, 409)
    assert f"'{current}'" in problem["detail"]
    assert (await get_json(order_client, f"/orders/{order['id']}"))["status"] == current


@pytest.mark.parametrize(
    "body, status",
    [
        ({"order": {"status": "lost"}}, 422),
        ({"order": {}}, 422),
        ({"order": {"status": "paid", "price": 1}}, 422),
        ({"status": "paid"}, 422),
    ],
)
async def test_bad_status_changes_are_rejected(order_client, customer_api, body, status):
    order = await place(order_client, (await create_customer(customer_api))["id"])
    await assert_problem(await order_client.patch(f"/orders/{order['id']}", json=body), status)
    assert (await get_json(order_client, f"/orders/{order['id']}"))["status"] == "created"


async def test_patch_of_a_missing_order_is_404(order_client):
    response = await order_client.patch("/orders/2147483000", json={"order": {"status": "paid"}})
    await assert_problem(response, 404)


async def test_racing_transitions_have_one_winner(order_client, customer_api, event_tap):
    order = await place(order_client, (await create_customer(customer_api))["id"])
    responses = await asyncio.gather(
        *(order_client.patch(f"/orders/{order['id']}", json={"order": {"status": "paid"}}) for _ in range(20))
    )
    assert sorted(r.status for r in responses) == [200] + [409] * 19

    def changes() -> list[dict]:
        return [b for b in event_tap.bodies("order.status_changed") if b["data"]["order_id"] == order["id"]]

    async def all_sent():  # the outbox deletes what the broker confirmed: nothing more will come
        use_app_orm(order_client.app)
        assert not await OutboxEvent.filter(order_id=order["id"]).exists()
        assert changes()

    await eventually(all_sent)
    assert len(changes()) == 1


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"customer_id": "1"}, "customer_id"),
        ({"customer_id": None}, "customer_id"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -3}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"price": -1}, "price"),
        ({"price": "12.345"}, "price"),
        ({"price": "lots"}, "price"),
        ({"product_name": ""}, "product_name"),
        ({"product_name": "a\u0000b"}, "product_name"),
        ({"product_name": "x" * 201}, "product_name"),
        ({"status": "paid"}, "status"),
        ({"discount": 5}, "discount"),
    ],
)
async def test_invalid_orders_are_422_naming_the_field_and_store_nothing(order_client, customer_api, fields, field):
    customer = await create_customer(customer_api)
    before = (await get_json(order_client, "/orders"))["total"]
    response = await order_client.post("/orders", json=order_body(customer["id"], **fields))
    await assert_problem(response, 422, field=field)
    assert (await get_json(order_client, "/orders"))["total"] == before


@pytest.mark.parametrize("data, status", [(b"{oops", 400), (b"", 400), (b"[]", 422)])
async def test_malformed_order_bodies(order_client, data, status):
    response = await order_client.post("/orders", data=data, headers={"Content-Type": "application/json"})
    await assert_problem(response, status)


async def test_request_id_reaches_the_customer_service(order_client, customer_api, request_logs):
    customer = await create_customer(customer_api)
    response = await order_client.post("/orders", json=order_body(customer["id"]), headers={"X-Request-ID": "trace-77"})
    assert response.headers["X-Request-ID"] == "trace-77"
    stamped = [r for r in request_logs.records if getattr(r, "request_id", None) == "trace-77"]
    assert any(r.name == "access" and r.getMessage().startswith("POST /orders") for r in stamped)
    assert any(r.name == "access" and f"/customers/{customer['id']}" in r.getMessage() for r in stamped)


async def test_the_longest_accepted_request_id_travels_into_the_event(order_client, customer_api, event_tap):
    customer = await create_customer(customer_api)
    request_id = "r" * 128
    response = await order_client.post("/orders", json=order_body(customer["id"]), headers={"X-Request-ID": request_id})
    assert response.status == 201 and response.headers["X-Request-ID"] == request_id
    order = await response.json()

    async def published():
        assert [
            m
            for m in event_tap.messages
            if orjson.loads(m.body)["data"]["order_id"] == order["id"]
            and m.header.properties.headers["x-request-id"] == request_id
        ]

    await eventually(published)


async def test_orders_are_counted_for_several_customers_at_once(order_client, customer_api):
    first, second = await create_customer(customer_api), await create_customer(customer_api)
    for customer, orders in ((first, 2), (second, 1)):
        for _ in range(orders):
            assert (await order_client.post("/orders", json=order_body(customer["id"]))).status == 201
    unknown = 2**31 - 1
    query = [("customer_id", first["id"]), ("customer_id", second["id"]), ("customer_id", unknown)]
    counts = await get_json(order_client, "/orders/counts", params=query)
    assert counts == {"counts": {str(first["id"]): 2, str(second["id"]): 1, str(unknown): 0}}


@pytest.mark.parametrize(
    "query", [[], [("customer_id", "x")], [("customer_id", "0")], [("customer_id", str(n)) for n in range(1, 202)]]
)
async def test_counting_needs_1_to_200_valid_customer_ids(order_client, query):
    problem = await assert_problem(await order_client.get("/orders/counts", params=query), 422)
    assert problem["errors"][0]["field"].startswith("customer_id")


async def test_a_status_change_event_occurs_when_the_change_is_stored(order_client, customer_api, event_tap):
    order = await place(order_client, (await create_customer(customer_api))["id"])
    paid = await get_json(order_client, f"/orders/{order['id']}")  # the order as created
    response = await order_client.patch(f"/orders/{order['id']}", json={"order": {"status": "paid"}})
    changed = await response.json()
    assert response.status == 200 and changed["updated_at"] > paid["updated_at"]

    async def published():
        bodies = [b for b in event_tap.bodies("order.status_changed") if b["data"]["order_id"] == order["id"]]
        assert bodies
        occurred = datetime.fromisoformat(bodies[0]["occurred_at"])
        assert occurred == datetime.fromisoformat(changed["updated_at"])  # not the creation time

    await eventually(published)


async def test_db_gives_the_connection_get_connection_gives(order_client):
    """shared.db.db is Tortoise's get_connection without its import per call: the pooled client outside a
    transaction, the transaction's own inside one (the hot statements must join a transaction they are in)."""
    use_app_orm(order_client.app)
    pooled = get_connection(APP)
    assert db(APP) is pooled
    async with transaction(APP) as conn:
        assert conn is not pooled
        assert db(APP) is get_connection(APP) is conn
    assert db(APP) is pooled
