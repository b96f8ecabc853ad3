"""Two instances of each service, as separate process trees with two workers each, on one set of databases
and one broker: exact counts, every event published once, each order's events in the order written."""

import asyncio
import uuid

import aiohttp
import orjson
import pytest

from shared.testing.plugin import eventually

pytestmark = pytest.mark.slow


async def post_politely(session, url: str, body: dict) -> dict:
    """A well-behaved client: honours Retry-After, with the same Idempotency-Key."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(20):
        async with session.post(url, json=body, headers=headers) as response:
            if response.status != 503 or "Retry-After" not in response.headers:
                assert response.status == 201, await response.text()
                return await response.json()
            wait = int(response.headers["Retry-After"])
        await asyncio.sleep(wait)  # what the service asked for
    raise AssertionError("still refused after 20 tries")


async def patch_status(session, url: str, status: str) -> None:
    for _ in range(20):
        async with session.patch(url, json={"order": {"status": status}}) as response:
            if response.status == 200:
                return
            assert response.status == 503, await response.text()
            wait = int(response.headers.get("Retry-After", "1"))
        await asyncio.sleep(wait)
    raise AssertionError("status change still refused")


async def test_two_instances_of_each_service_count_exactly_and_publish_each_event_once(start_services, event_tap):
    instances = [await start_services(WORKERS="2"), await start_services(WORKERS="2")]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=60)) as session:
        customers = []
        for i in range(4):
            customers.append(
                await post_politely(
                    session,
                    f"{instances[i % 2].customer_url}/customers",
                    {"customer": {"name": f"Multi {i}", "address": "Here"}},
                )
            )
        orders = await asyncio.gather(
            *(
                post_politely(
                    session,
                    f"{instances[i % 2].order_url}/orders",
                    {
                        "order": {
                            "customer_id": customers[i % 4]["id"],
                            "product_name": "Kettle",
                            "quantity": 1,
                            "price": "25.00",
                        }
                    },
                )
                for i in range(200)
            )
        )
        changed = [order["id"] for order in orders[:40]]
        for status in ("paid", "shipped"):  # each change through the other instance than the last
            await asyncio.gather(
                *(
                    patch_status(
                        session, f"{instances[(n + (status == 'paid')) % 2].order_url}/orders/{order_id}", status
                    )
                    for n, order_id in enumerate(changed)
                )
            )

        async def exact():
            for n, customer in enumerate(customers):
                async with session.get(f"{instances[n % 2].customer_url}/customers/{customer['id']}") as response:
                    assert (await response.json())["orders_count"] == 50

        await eventually(exact, timeout=60)

    ours = {order["id"] for order in orders}

    async def all_published():
        mine = [orjson.loads(m.body) for m in event_tap.messages if orjson.loads(m.body)["data"]["order_id"] in ours]
        assert len({body["event_id"] for body in mine}) >= 200 + 2 * 40, len(mine)
        return mine

    mine = await eventually(all_published, timeout=60)
    twice = len(mine) - len({body["event_id"] for body in mine})
    assert not twice, f"{twice} event(s) published twice; logs:\n{instances[0].log_tail()}\n{instances[1].log_tail()}"
    by_order: dict[int, list[str]] = {}
    for body in mine:
        by_order.setdefault(body["data"]["order_id"], []).append(body["data"]["status"])
    assert all(by_order[order_id] == ["created", "paid", "shipped"] for order_id in changed)
