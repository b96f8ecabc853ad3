from decimal import Decimal

from shared.testing.api import assert_problem, create_customer, get_json
from shared.testing.plugin import eventually


def order_body(customer_id: int, **fields) -> dict:
    return {"order": {"customer_id": customer_id, "product_name": "Laptop", "quantity": 1, "price": 1200,
                      "status": "created", **fields}}


async def test_the_readme_example_creates_an_order_with_the_customer_embedded(order_client, customer_api):
    customer = await create_customer(customer_api, name="Juan Guauque", address="Bogotá")
    response = await order_client.post("/orders", json=order_body(customer["id"]))
    assert response.status == 201, await response.text()
    order = await response.json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["price"] == "1200.00" and order["total"] == "1200.00" and order["status"] == "created"
    assert order["customer"] == {"id": customer["id"], "name": "Juan Guauque", "address": "Bogotá",
                                 "orders_count": customer["orders_count"]}
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
