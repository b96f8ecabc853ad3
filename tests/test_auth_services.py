"""Both services behind the development issuer (a real process): the order routes' scopes, the order of
401/422/403/404/409, customer-bound tokens, key rotation, and the order service as a client of its own."""

import base64

import aiohttp
import orjson
import pytest

from conftest import make_settings, secured_services
from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from order.keys import CUSTOMERS
from shared.testing.browser import rendered_dom, requires_chromium
from shared.testing.issuers import DevIssuer
from shared.testing.plugin import eventually, unique


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class System:
    def __init__(self, issuer, customers, orders) -> None:
        self.issuer, self.customers, self.orders = issuer, customers, orders

    async def new_customer(self) -> int:
        token = await self.issuer.token("customers:write")
        body = {"customer": {"name": unique("Ada"), "address": "1 Loop Road"}}
        response = await self.customers.post("/customers", json=body, headers=bearer(token))
        assert response.status == 201, await response.text()
        return (await response.json())["id"]

    async def place(self, customer_id: int, token: str | None = None):
        token = token or await self.issuer.token("orders:write")
        order = {"customer_id": customer_id, "product_name": "Laptop", "quantity": 1, "price": "1200.00"}
        return await self.orders.post("/orders", json={"order": order}, headers=bearer(token))

    async def new_order(self, customer_id: int) -> int:
        response = await self.place(customer_id)
        assert response.status == 201, await response.text()
        return (await response.json())["id"]

    async def orders_of(self, customer_id: int) -> int:
        token = await self.issuer.token("orders:read")
        response = await self.orders.get(f"/customers/{customer_id}/orders", headers=bearer(token))
        return (await response.json())["total"]


async def start_system(aiohttp_client, aiohttp_server, test_run, issuer, **order_more) -> System:
    customers, orders = await secured_services(aiohttp_server, test_run, issuer, **order_more)
    return System(issuer, await aiohttp_client(customers), await aiohttp_client(orders))


@pytest.fixture
async def system(aiohttp_client, aiohttp_server, test_run, dev_issuer) -> System:
    return await start_system(aiohttp_client, aiohttp_server, test_run, await dev_issuer())


async def has_token(system: System) -> None:
    assert system.orders.app[CUSTOMERS].token.current() is not None


SCOPES = ["orders:read", "orders:write", "orders:fulfil", "customers:read", "customers:write", "ops:dead-letters"]


async def test_each_order_route_takes_its_scope_and_refuses_every_other(system):
    await eventually(lambda: has_token(system), timeout=10)
    customer_id = await system.new_customer()
    order_id = await system.new_order(customer_id)
    body = {"customer_id": customer_id, "product_name": "Mouse", "quantity": 1, "price": "5.00"}
    cases = [
        ("GET", "/orders", None, "orders:read", 200),
        ("GET", f"/orders/{order_id}", None, "orders:read", 200),
        ("GET", f"/customers/{customer_id}/orders", None, "orders:read", 200),
        ("GET", f"/orders/counts?customer_id={customer_id}", None, "orders:read", 200),
        ("POST", "/orders", {"order": body}, "orders:write", 201),
        ("PATCH", f"/orders/{order_id}", {"order": {"status": "paid"}}, "orders:fulfil", 200),
        ("PATCH", f"/orders/{order_id}", {"order": {"status": "shipped"}}, "orders:fulfil", 200),
        ("PATCH", f"/orders/{order_id}", {"order": {"status": "delivered"}}, "orders:fulfil", 200),
        (
            "PATCH",
            f"/orders/{await system.new_order(customer_id)}",
            {"order": {"status": "cancelled"}},
            "orders:write",
            200,
        ),
    ]
    for method, path, json, scope, status in cases:
        others = await system.issuer.token(" ".join(s for s in SCOPES if s != scope))
        refused = await system.orders.request(method, path, json=json, headers=bearer(others))
        assert refused.status == 403, (method, path, json)
        assert refused.headers["WWW-Authenticate"] == (
            f'Bearer realm="order", error="insufficient_scope", scope="{scope}"'
        )
        allowed = await system.orders.request(method, path, json=json, headers=bearer(await system.issuer.token(scope)))
        assert allowed.status == status, (method, path, await allowed.text())


async def test_a_status_change_checks_401_then_422_then_403_then_404_then_409(system):
    customer_id = await system.new_customer()
    await eventually(lambda: has_token(system), timeout=10)
    order_id = await system.new_order(customer_id)
    read = await system.issuer.token("orders:read")
    write = await system.issuer.token("orders:write")
    fulfil = await system.issuer.token("orders:fulfil")
    path, missing = f"/orders/{order_id}", "/orders/2147483000"

    async def status(path, new_status, token=None):
        headers = bearer(token) if token else {}
        response = await system.orders.patch(path, json={"order": {"status": new_status}}, headers=headers)
        return response.status

    assert await status(missing, "lost") == 401
    assert await status(missing, "lost", read) == 422
    assert await status(missing, "cancelled", read) == 403
    assert await status(missing, "cancelled", fulfil) == 403  # fulfilling does not allow cancelling
    assert await status(missing, "paid", write) == 403  # nor the other way round
    assert await status(missing, "cancelled", write) == 404
    assert await status(path, "shipped", fulfil) == 409
    assert await status(path, "cancelled", write) == 200


async def test_every_body_is_validated_before_a_missing_scope_is_refused(system):
    read = bearer(await system.issuer.token("orders:read customers:read"))
    bad_order = {"order": {"customer_id": "one", "product_name": "", "quantity": 0, "price": "x"}}
    assert (await system.orders.post("/orders", json=bad_order, headers=read)).status == 422
    good_order = {"order": {"customer_id": 1, "product_name": "Mouse", "quantity": 1, "price": "5.00"}}
    assert (await system.orders.post("/orders", json=good_order, headers=read)).status == 403
    assert (await system.customers.post("/customers", json={"customer": {}}, headers=read)).status == 422
    good_customer = {"customer": {"name": "Ada", "address": "London"}}
    refused = await system.customers.post("/customers", json=good_customer, headers=read)
    assert refused.status == 403 and 'scope="customers:write"' in refused.headers["WWW-Authenticate"]


async def test_a_customers_own_token_reaches_that_customers_orders_only(system):
    await eventually(lambda: has_token(system), timeout=10)
    mine, theirs = await system.new_customer(), await system.new_customer()
    my_order, their_order = await system.new_order(mine), await system.new_order(theirs)
    token = await system.issuer.token("orders:read orders:write orders:fulfil", customer_id=mine)
    assert (await system.orders.get(f"/orders/{my_order}", headers=bearer(token))).status == 200
    page = await (await system.orders.get("/orders", headers=bearer(token))).json()
    assert {order["customer_id"] for order in page["items"]} == {mine}
    held = await system.orders_of(theirs)
    assert (await system.place(theirs, token)).status == 403
    assert await system.orders_of(theirs) == held  # nothing stored
    for method, path, json in (
        ("GET", f"/orders/{their_order}", None),
        ("GET", f"/orders?customer_id={theirs}", None),
        ("GET", f"/customers/{theirs}/orders", None),
        ("GET", f"/orders/counts?customer_id={mine}", None),
        ("PATCH", f"/orders/{their_order}", {"order": {"status": "cancelled"}}),
        ("PATCH", f"/orders/{my_order}", {"order": {"status": "paid"}}),
    ):
        response = await system.orders.request(method, path, json=json, headers=bearer(token))
        assert response.status == 403, (method, path)
    assert (await system.place(mine, token)).status == 201
    cancel = {"order": {"status": "cancelled"}}
    assert (await system.orders.patch(f"/orders/{my_order}", json=cancel, headers=bearer(token))).status == 200


async def test_a_cursor_crafted_for_another_customer_reads_nothing_of_theirs(system):
    await eventually(lambda: has_token(system), timeout=10)
    mine, theirs = await system.new_customer(), await system.new_customer()
    await system.new_order(theirs)
    position = {"after": ["2999-01-01T00:00:00+00:00", 2**31 - 1], "limit": 50}
    forged = {**position, "filters": {"customer_id": theirs, "status": None}}
    cursor = base64.urlsafe_b64encode(orjson.dumps(forged)).decode().rstrip("=")
    token = bearer(await system.issuer.token("orders:read", customer_id=mine))
    for path in (f"/orders?cursor={cursor}", f"/customers/{mine}/orders?cursor={cursor}"):
        response = await system.orders.get(path, headers=token)
        assert response.status == 422, (path, await response.text())  # not their orders


async def test_a_key_rotation_at_the_issuer_causes_no_401(system):
    await eventually(lambda: has_token(system), timeout=10)
    customer_id = await system.new_customer()
    await system.issuer.rotate()
    token = await system.issuer.token("customers:read")
    assert (await system.customers.get(f"/customers/{customer_id}", headers=bearer(token))).status == 200
    await system.issuer.rotate()
    assert (await system.place(customer_id)).status == 201  # the order service's older token still works


async def test_the_order_service_keeps_working_on_its_token_while_the_issuer_is_gone(system):
    await eventually(lambda: has_token(system), timeout=10)
    customer_id = await system.new_customer()
    token = await system.issuer.token("orders:write orders:read")
    system.issuer.stop()
    response = await system.place(customer_id, token)
    assert response.status == 201, await response.text()


async def test_without_a_token_of_its_own_post_orders_is_a_503_naming_the_cause(
    aiohttp_client, aiohttp_server, test_run, dev_issuer
):
    issuer = await dev_issuer()
    system = await start_system(aiohttp_client, aiohttp_server, test_run, issuer, client_secret="wrong")
    customer_id = await system.new_customer()
    response = await system.place(customer_id)
    assert response.status == 503
    body = await response.json()
    assert "no valid token for the customer service" in body["detail"]
    assert "Retry-After" in response.headers
    assert await system.orders_of(customer_id) == 0


async def test_the_order_services_token_is_renewed_before_it_expires_and_lapses_without_its_issuer(
    aiohttp_client, aiohttp_server, test_run, dev_issuer
):
    issuer = await dev_issuer(lifetime=3)
    system = await start_system(aiohttp_client, aiohttp_server, test_run, issuer)
    await eventually(lambda: has_token(system), timeout=10)
    token_source = system.orders.app[CUSTOMERS].token
    first = token_source.current()

    async def renewed():
        assert token_source.current() not in (None, first)

    await eventually(renewed, timeout=10)
    issuer.stop()

    async def lapsed():
        assert token_source.current() is None

    await eventually(lapsed, timeout=10)
    metrics = await (await system.orders.get("/metrics")).text()
    assert "auth_token_renewal_failures_total 0.0" not in metrics


@pytest.mark.slow
async def test_auth_mode_jwt_make_run_starts_the_development_issuer_and_checks_tokens(start_services, tmp_path):
    issuer = DevIssuer()  # only its port and client: run.sh starts the process
    services = await start_services(AUTH_MODE="jwt", DEV_ISSUER_PORT=str(issuer.port))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{services.customer_url}/customers") as response:
            assert response.status == 401
        write = bearer(await issuer.token("customers:write"))
        body = {"customer": {"name": unique("Run"), "address": "4 Loop Road"}}
        async with session.post(f"{services.customer_url}/customers", json=body, headers=write) as response:
            assert response.status == 201
            customer_id = (await response.json())["id"]
        order = {"customer_id": customer_id, "product_name": "Book", "quantity": 1, "price": "9.99"}

        async def placed():  # the order service gets its own token from the issuer first
            headers = bearer(await issuer.token("orders:write"))
            async with session.post(f"{services.order_url}/orders", json={"order": order}, headers=headers) as r:
                assert r.status == 201, await r.text()

        await eventually(placed, timeout=20)
        async with session.get(f"{services.order_url}/ready") as response:
            assert "auth" not in await response.json()


def test_the_api_documents_declare_the_schemes_and_each_operations_scopes():
    from customer.openapi import openapi_spec as customer_spec
    from order.openapi import openapi_spec as order_spec

    spec = order_spec("https://idp.example/token")
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://idp.example/token" and set(SCOPES) <= set(flow["scopes"])
    patch = spec["paths"]["/orders/{id}"]["patch"]
    assert {tuple(s["bearer"]) for s in patch["security"] if "bearer" in s} == {("orders:write",), ("orders:fulfil",)}
    assert {"401", "403"} <= set(patch["responses"])
    assert spec["paths"]["/orders/{id}"]["get"]["security"][0] == {"bearer": ["orders:read"]}
    assert spec["paths"]["/health"]["get"]["security"] == []  # open, said so
    assert customer_spec()["paths"]["/customers"]["post"]["security"][0] == {"bearer": ["customers:write"]}


async def test_reconcile_takes_a_token_for_the_order_service(system, customer_settings, capsys):
    from customer import ops as customer_ops

    await eventually(lambda: has_token(system), timeout=10)
    customer_id = await system.new_customer()
    url = str(system.orders.make_url("")).rstrip("/")
    assert await customer_ops.reconcile(customer_settings, url, [customer_id]) == 2
    assert "refused the token (401)" in capsys.readouterr().err
    token = await system.issuer.token("orders:read")
    assert await customer_ops.reconcile(customer_settings, url, [customer_id], token) == 0


async def test_the_callers_sub_is_the_events_x_actor_and_keys_are_per_caller(
    aiohttp_client, aiohttp_server, test_run, dev_issuer, event_tap
):
    issuer = await dev_issuer(
        clients=("order-service:order-service-secret:customers:read", "dev:dev-secret:*", "clerk:pw:*")
    )
    system = await start_system(aiohttp_client, aiohttp_server, test_run, issuer)
    await eventually(lambda: has_token(system), timeout=10)
    customer_id = await system.new_customer()
    order = {"customer_id": customer_id, "product_name": "Lamp", "quantity": 1, "price": "30.00"}
    key = {"Idempotency-Key": unique("key")}
    placed = {}
    for client in ("dev:dev-secret", "clerk:pw", "clerk:pw"):
        token = await issuer.token("orders:write", client=client)
        response = await system.orders.post("/orders", json={"order": order}, headers={**bearer(token), **key})
        assert response.status == 201, await response.text()
        placed.setdefault(client, set()).add((await response.json())["id"])
    assert len(placed["clerk:pw"]) == 1  # the same caller's retry is replayed
    assert placed["dev:dev-secret"] != placed["clerk:pw"]  # another caller's same key is another key

    async def published():
        actors = {
            message.header.properties.headers.get("x-actor")
            for message in event_tap.messages
            if orjson.loads(message.body)["data"]["order_id"] in placed["dev:dev-secret"] | placed["clerk:pw"]
        }
        assert actors == {"dev", "clerk"}

    await eventually(published, timeout=10)


async def test_with_auth_off_an_event_has_no_actor(order_client, customer_api, event_tap):
    body = {"customer": {"name": unique("Off"), "address": "5 Loop Road"}}
    customer_id = (await (await customer_api.post("/customers", json=body)).json())["id"]
    order = {"customer_id": customer_id, "product_name": "Pen", "quantity": 1, "price": "1.00"}
    order_id = (await (await order_client.post("/orders", json={"order": order})).json())["id"]

    async def published():
        messages = [m for m in event_tap.messages if orjson.loads(m.body)["data"]["order_id"] == order_id]
        assert len(messages) == 1
        message = messages[0]
        assert "x-request-id" in message.header.properties.headers
        assert "x-actor" not in message.header.properties.headers

    await eventually(published, timeout=10)


async def test_the_consumer_logs_the_actor_of_an_event_it_dead_letters(customer_client, broker, test_run, request_logs):
    from pamqp.commands import Basic

    from shared.testing.api import order_created_event
    from shared.testing.runs import BROKER_USER

    await broker.basic_publish(
        order_created_event(2147483000),  # no such customer: dead-lettered at once
        exchange=test_run.exchange,
        routing_key="order.created",
        properties=Basic.Properties(
            delivery_mode=2, content_type="application/json", user_id=BROKER_USER, headers={"x-actor": "clerk-9"}
        ),
    )

    async def logged():
        actors = [
            getattr(record, "actor", None)
            for record in request_logs.records
            if record.getMessage().startswith("dead-lettering")
        ]
        assert "clerk-9" in actors

    await eventually(logged, timeout=10)


@requires_chromium
async def test_the_docs_page_has_an_authorize_button_and_locked_operations(aiohttp_server, test_run, own_issuer):
    settings = make_settings(
        CustomerSettings,
        test_run,
        database_url=test_run.customer_db,
        auth_mode="jwt",
        auth_issuer=own_issuer.url,
        auth_jwks_url=own_issuer.jwks_url,
    )
    server = await aiohttp_server(await create_customer_app(settings))
    dom = await rendered_dom(str(server.make_url("/docs")))
    assert 'class="btn authorize unlocked"' in dom
    assert dom.count("authorization__btn") >= 5  # a padlock on each secured operation
