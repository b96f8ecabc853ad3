"""Both services document every route they have, serve the document, and a browser renders it."""

import pytest
from openapi_spec_validator import validate

from customer import openapi as customer_docs
from customer.app import create_app as create_customer_app
from order import openapi as order_docs
from order.app import create_app as create_order_app
from shared.testing.browser import rendered_dom, requires_chromium
from shared.testing.docs import documented, rendered, routed


@pytest.fixture(params=["customer", "order"])
async def service(request, customer_settings, order_settings):
    """(the app, its docs module) for each service."""
    if request.param == "customer":
        return await create_customer_app(customer_settings), customer_docs
    return await create_order_app(order_settings), order_docs


@pytest.mark.parametrize("docs", [customer_docs, order_docs], ids=["customer", "order"])
def test_the_spec_is_valid_openapi_3_1(docs):
    validate(docs.openapi_spec())


async def test_every_route_is_documented_and_every_documented_route_exists(service):
    app, docs = service
    assert routed(app) == documented(docs.openapi_spec())


async def test_the_service_serves_its_spec_and_docs_page(aiohttp_client, service):
    app, docs = service
    client = await aiohttp_client(app)
    response = await client.get("/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == docs.openapi_spec()
    assert response.headers["X-Request-ID"]
    response = await client.get("/docs")
    assert response.status == 200 and "docs/static/swagger-ui-bundle.js" in await response.text()
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).status == 200


@requires_chromium
async def test_a_browser_renders_every_operation_on_the_docs_page(aiohttp_server, service):
    app, docs = service
    server = await aiohttp_server(app)
    dom = await rendered_dom(str(server.make_url("/docs")))
    assert "Unable to render" not in dom
    assert rendered(dom) == documented(docs.openapi_spec())
    for operation in docs.OPERATIONS:
        assert f'opblock-summary-description">{operation.summary}<' in dom
