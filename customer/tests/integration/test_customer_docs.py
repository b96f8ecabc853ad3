"""The customer service documents every route it has, from the models that validate its requests."""

import pytest
from openapi_spec_validator import validate

from customer.app import create_app
from customer.openapi import OPERATIONS, openapi_spec
from customer.schemas import CreateCustomerBody, UpdateCustomerBody
from shared.testing.browser import rendered_dom, requires_chromium
from shared.testing.docs import documented, rendered, routed, schema_validator


@pytest.fixture
async def app(customer_settings):
    return await create_app(customer_settings)


def test_the_spec_is_valid_openapi_3_1():
    validate(openapi_spec())


async def test_every_route_is_documented_and_every_documented_route_exists(app):
    assert routed(app) == documented(openapi_spec())


async def test_the_service_serves_its_spec_and_docs_page(aiohttp_client, app):
    client = await aiohttp_client(app)
    response = await client.get("/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == openapi_spec()
    assert response.headers["X-Request-ID"]
    response = await client.get("/docs")
    assert response.status == 200 and "docs/static/swagger-ui-bundle.js" in await response.text()
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).status == 200


@pytest.mark.parametrize(("component", "model", "body", "valid"), [
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada", "address": "x"}}, True),
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada", "address": "x", "email": "a@b.co"}}, True),
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada", "address": "x", "vip": True}}, False),
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada"}}, False),
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "", "address": "x"}}, False),
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "A" * 201, "address": "x"}}, False),
    ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada", "address": "x", "email": "nope"}}, False),
    ("CreateCustomerBody", CreateCustomerBody, {"name": "Ada", "address": "x"}, False),
    ("UpdateCustomerBody", UpdateCustomerBody, {"customer": {"address": "y"}}, True),
    ("UpdateCustomerBody", UpdateCustomerBody, {"customer": {"orders_count": 3}}, False),
    ("UpdateCustomerBody", UpdateCustomerBody, {"customer": {"name": None}}, False),
])
def test_the_spec_accepts_and_rejects_the_bodies_the_models_do(component, model, body, valid):
    assert schema_validator(openapi_spec(), component).is_valid(body) is valid
    try:
        model.model_validate(body)
        model_accepts = True
    except ValueError:
        model_accepts = False
    assert model_accepts is valid


def test_page_parameters_are_documented():
    parameters = {p.get("name"): p for p in openapi_spec()["paths"]["/customers"]["get"]["parameters"]}
    assert parameters["limit"]["schema"]["default"] == 50
    assert parameters["offset"]["schema"] == {"default": 0, "minimum": 0, "maximum": 2**63 - 1, "title": "Offset",
                                              "type": "integer"}


@requires_chromium
async def test_a_browser_renders_every_operation_on_the_docs_page(aiohttp_server, app):
    server = await aiohttp_server(app)
    dom = await rendered_dom(str(server.make_url("/docs")))
    assert "Unable to render" not in dom
    assert rendered(dom) == documented(openapi_spec())
    for operation in OPERATIONS:
        assert f'opblock-summary-description">{operation.summary}<' in dom
