import asyncio

from order.models import IdempotencyKey, Order
from shared.db import use_app_orm
from shared.testing.api import assert_problem, create_customer
from shared.testing.plugin import unique


def body(customer_id: int, **fields) -> dict:
    return {"order": {"customer_id": customer_id, "product_name": "Laptop", "quantity": 1, "price": 1200, **fields}}


async def orders_of(client, customer_id: int) -> int:
    use_app_orm(client.app)
    return await Order.filter(customer_id=customer_id).count()


async def test_a_retry_with_the_same_key_replays_the_first_response(order_client, customer_api):
    customer = await create_customer(customer_api)
    headers = {"Idempotency-Key": unique("key")}
    first = await order_client.post("/orders", json=body(customer["id"]), headers=headers)
    again = await order_client.post("/orders", json=body(customer["id"]), headers=headers)
    assert first.status == again.status == 201
    assert await again.json() == await first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await orders_of(order_client, customer["id"]) == 1


async def test_the_same_body_written_differently_is_the_same_request(order_client, customer_api):
    customer = await create_customer(customer_api)
    headers = {"Idempotency-Key": unique("key")}
    first = await order_client.post("/orders", json=body(customer["id"], price=1200), headers=headers)
    again = await order_client.post("/orders", json=body(customer["id"], price="1200.00"), headers=headers)
    assert (await again.json())["id"] == (await first.json())["id"]


async def test_the_same_key_with_another_body_is_422(order_client, customer_api):
    customer = await create_customer(customer_api)
    headers = {"Idempotency-Key": unique("key")}
    await order_client.post("/orders", json=body(customer["id"]), headers=headers)
    response = await order_client.post("/orders", json=body(customer["id"], quantity=2), headers=headers)
    await assert_problem(response, 422, field="Idempotency-Key")
    assert await orders_of(order_client, customer["id"]) == 1


async def test_concurrent_requests_with_one_key_create_one_order(order_client, customer_api):
    customer = await create_customer(customer_api)
    headers = {"Idempotency-Key": unique("key")}
    responses = await asyncio.gather(
        *(order_client.post("/orders", json=body(customer["id"]), headers=headers) for _ in range(6))
    )
    assert {r.status for r in responses} <= {201, 409}
    created_ids = {(await r.json())["id"] for r in responses if r.status == 201}
    assert len(created_ids) == 1
    assert await orders_of(order_client, customer["id"]) == 1


async def test_a_rejected_request_stores_no_key(order_client, customer_api):
    customer = await create_customer(customer_api)
    key = unique("key")
    response = await order_client.post("/orders", json=body(2147483000), headers={"Idempotency-Key": key})
    await assert_problem(response, 422, field="customer_id")
    use_app_orm(order_client.app)
    assert not await IdempotencyKey.exists(key=key)
    # The key is free: the corrected request goes through.
    retry = await order_client.post("/orders", json=body(customer["id"]), headers={"Idempotency-Key": key})
    assert retry.status == 201


async def test_an_overlong_key_is_422(order_client, customer_api):
    customer = await create_customer(customer_api)
    response = await order_client.post("/orders", json=body(customer["id"]), headers={"Idempotency-Key": "k" * 256})
    await assert_problem(response, 422, field="Idempotency-Key")
    assert await orders_of(order_client, customer["id"]) == 0
