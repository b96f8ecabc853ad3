"""Both services through PgBouncer in transaction pooling mode: the API and the event path.

What they need there: no prepared-statement cache (`?statement_cache_size=0` on the URL: a statement
prepared on one server connection is not on the next), no session state (none is set; purges take
transaction-level advisory locks), the relay's LISTEN on a direct connection (ORDER_LISTEN_DATABASE_URL),
and migrations on a direct connection (they take a session advisory lock).
"""

import pytest

from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from order.app import create_app as create_order_app
from order.housekeeping import purge_expired_keys
from order.settings import OrderSettings
from shared.db import use_app_orm
from shared.housekeeping import vacuum
from shared.testing import pgbouncer
from shared.testing.api import create_customer, get_json
from shared.testing.plugin import eventually

pytestmark = pytest.mark.skipif(pgbouncer.available() is not None, reason=str(pgbouncer.available()))


@pytest.fixture
def bouncer():
    with pgbouncer.pgbouncer() as port:
        yield port


def through(url: str, port: int) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{port}") + "?statement_cache_size=0"


async def test_the_api_and_the_event_path_work_through_pgbouncer_in_transaction_mode(
    aiohttp_client, aiohttp_server, scratch_run, bouncer
):
    run = scratch_run()
    customer_server = await aiohttp_server(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=through(run.customer_db, bouncer)))
    )
    await broker_connected(customer_server.app)
    customers = await aiohttp_client(customer_server)
    order_settings = make_settings(
        OrderSettings,
        run,
        database_url=through(run.order_db, bouncer),
        listen_url=run.order_db,
        customer_service_url=str(customer_server.make_url("")),
    )
    orders = await aiohttp_client(await create_order_app(order_settings))
    await broker_connected(orders.app)

    customer = await create_customer(customers)
    patched = await customers.patch(f"/customers/{customer['id']}", json={"customer": {"address": "Elsewhere"}})
    assert patched.status == 200
    placed = []
    for _ in range(30):  # many statements, over the pooler's few server connections
        response = await orders.post(
            "/orders",
            json={"order": {"customer_id": customer["id"], "product_name": "Kettle", "quantity": 1, "price": "25.00"}},
            headers={"Idempotency-Key": f"pgb-{len(placed)}-{run.id}"},
        )
        assert response.status == 201, await response.text()
        placed.append((await response.json())["id"])
    paid = await orders.patch(f"/orders/{placed[0]}", json={"order": {"status": "paid"}})
    assert paid.status == 200
    page = await get_json(orders, f"/orders?customer_id={customer['id']}&limit=5")
    assert page["total"] == 30 and len(page["items"]) == 5

    async def all_counted():
        assert (await get_json(customers, f"/customers/{customer['id']}"))["orders_count"] == 30

    await eventually(all_counted, timeout=20)
    use_app_orm(orders.app)  # the housekeeping's statements pass through it too
    await purge_expired_keys(order_settings)
    await vacuum("order", "outbox")
    assert (await orders.get("/ready")).status == 200
