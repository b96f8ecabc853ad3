"""The customer database goes away and comes back: clean 503s, nothing half-written, automatic recovery."""

from conftest import broker_connected, make_settings
from customer.app import create_app
from customer.metrics import EVENTS_RETRIED
from customer.settings import CustomerSettings
from shared.testing.api import assert_problem, becomes_ready, create_customer, get_json, order_created_event
from shared.testing.plugin import eventually
from shared.testing.runs import publish_order_created


async def test_requests_fail_cleanly_while_the_database_is_cut_and_recover_after(aiohttp_client, test_run, tcp_proxy):
    proxy = await tcp_proxy("127.0.0.1", 5432)
    url = test_run.customer_db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    client = await aiohttp_client(await create_app(make_settings(CustomerSettings, test_run, database_url=url)))
    await broker_connected(client.app)
    customer = await create_customer(client)

    await proxy.cut()
    response = await client.get(f"/customers/{customer['id']}")
    await assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    await assert_problem(await client.post("/customers", json={"customer": {"name": "Lost", "address": "x"}}), 503)
    ready = await assert_problem(await client.get("/ready"), 503, field="database")
    assert "broker" not in [e["field"] for e in ready["errors"]]
    assert (await client.get("/health")).status == 200

    await proxy.restore()
    assert (await get_json(client, f"/customers/{customer['id']}"))["name"] == customer["name"]
    await becomes_ready(client)
    names = [c["name"] for c in (await get_json(client, "/customers?limit=200"))["items"]]
    assert "Lost" not in names


async def test_events_arriving_while_the_database_is_cut_apply_once_it_is_back(
    aiohttp_client, test_run, tcp_proxy, broker
):
    proxy = await tcp_proxy("127.0.0.1", 5432)
    url = test_run.customer_db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    settings = make_settings(CustomerSettings, test_run, database_url=url)
    client = await aiohttp_client(await create_app(settings))
    await broker_connected(client.app)
    customer = await create_customer(client)
    retried_before = EVENTS_RETRIED.labels("database_unavailable")._value.get()

    await proxy.cut()
    for _ in range(5):
        await publish_order_created(broker, test_run.exchange, order_created_event(customer["id"]))

    async def retrying():
        assert EVENTS_RETRIED.labels("database_unavailable")._value.get() > retried_before

    await eventually(retrying)
    await proxy.restore()

    async def applied_once():
        assert (await get_json(client, f"/customers/{customer['id']}"))["orders_count"] == 5

    await eventually(applied_once, timeout=15)
