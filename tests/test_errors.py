"""What a client sees when things go wrong inside: field names of the contract, and 500s that leak nothing."""

import pytest
from aiohttp import web

from conftest import broker_connected
from customer.app import create_app as create_customer_app
from shared.testing.api import assert_problem, create_customer


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", 5, "Input should be a valid string"),
        ("address", None, "Value error, may not be null"),
        ("email", 7, "Input should be a valid string"),
    ],
)
async def test_a_bad_optional_field_is_named_as_the_contract_names_it(customer_client, field, value, message):
    customer = await create_customer(customer_client)
    response = await customer_client.patch(f"/customers/{customer['id']}", json={"customer": {field: value}})
    problem = await assert_problem(response, 422)
    assert problem["errors"] == [{"field": field, "message": message}]  # not `name.none`, `name.function-after[…]`


async def test_a_bad_optional_order_field_is_named_plainly(order_client, customer_api):
    customer = await create_customer(customer_api)
    body = {"order": {"customer_id": customer["id"], "product_name": "x", "quantity": 1, "price": "1", "status": 5}}
    problem = await assert_problem(await order_client.post("/orders", json=body), 422)
    assert [error["field"] for error in problem["errors"]] == ["status"]


async def test_an_unhandled_error_is_a_500_problem_that_leaks_nothing_and_is_logged_with_its_request_id(
    aiohttp_client, customer_settings, request_logs
):
    app = await create_customer_app(customer_settings)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("SELECT password FROM customers /srv/app/secret.py line 42")

    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    await broker_connected(client.app)

    response = await client.get("/broken", headers={"X-Request-ID": "boom-1"})
    problem = await assert_problem(response, 500)
    text = str(problem)
    for leak in ("SELECT", "password", "/srv", "secret.py", "Traceback", "RuntimeError"):
        assert leak not in text
    assert response.headers["X-Request-ID"] == "boom-1"
    [logged] = [r for r in request_logs.records if r.levelname == "ERROR" and "/broken" in r.getMessage()]
    assert logged.request_id == "boom-1" and logged.exc_info is not None  # the trace is in the log, only


async def test_a_redirect_a_handler_raises_reaches_the_client_as_a_redirect(aiohttp_client, customer_settings):
    app = await create_customer_app(customer_settings)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/customers")

    app.router.add_get("/moved", moved)
    client = await aiohttp_client(app)
    await broker_connected(client.app)

    response = await client.get("/moved", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/customers"
    assert response.content_type != "application/problem+json"
