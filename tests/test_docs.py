"""Both services document every route they have, serve the documents, and a browser renders them."""

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from customer import openapi as customer_docs
from customer.app import create_app as create_customer_app
from customer.asyncapi import customer_asyncapi
from order import openapi as order_docs
from order.app import create_app as create_order_app
from order.asyncapi import order_asyncapi
from shared.testing.browser import rendered_dom, requires_chromium
from shared.testing.docs import documented, rendered, routed

REDOCLY = Path(__file__).resolve().parents[1] / ".venv" / "test-tools" / "node_modules" / ".bin" / "redocly"
requires_redocly = pytest.mark.skipif(
    not REDOCLY.exists(), reason="Redocly's CLI is not installed (infra/scripts/install-test-deps.sh installs it)"
)


@pytest.fixture(params=["customer", "order"])
async def service(request, customer_settings, order_settings):
    """(the app, its docs module) for each service."""
    if request.param == "customer":
        return await create_customer_app(customer_settings), customer_docs
    return await create_order_app(order_settings), order_docs


@pytest.mark.parametrize("docs", [customer_docs, order_docs], ids=["customer", "order"])
def test_every_operation_and_property_has_a_description_and_every_operation_an_example(docs):
    spec = docs.openapi_spec()
    assert all(tag.get("description") for tag in spec["tags"]), spec["tags"]
    for name, schema in spec["components"]["schemas"].items():
        assert schema.get("description"), name
        for prop, value in schema.get("properties", {}).items():
            assert value.get("description"), f"{name}.{prop}"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation["description"] and operation["summary"], where
            assert all("description" in p for p in operation["parameters"] if "$ref" not in p), where
            if "requestBody" in operation:
                assert "example" in operation["requestBody"]["content"]["application/json"], where
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    assert "example" in media or "examples" in media, f"{where} {status}"


@pytest.mark.parametrize("docs", [customer_docs, order_docs], ids=["customer", "order"])
def test_every_example_is_valid_against_its_schema(docs):
    spec = docs.openapi_spec()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            bodies = [operation["requestBody"]] if "requestBody" in operation else []
            for body in bodies + list(operation["responses"].values()):
                for media in body.get("content", {}).values():
                    examples = [media["example"]] if "example" in media else []
                    examples += [e["value"] for e in media.get("examples", {}).values()]
                    validator = Draft202012Validator({**media["schema"], "components": spec["components"]})
                    for example in examples:
                        assert validator.is_valid(example), (method, path, example)


@requires_redocly
@pytest.mark.parametrize("docs", [customer_docs, order_docs], ids=["customer", "order"])
def test_redocly_finds_nothing_above_a_warning(docs, tmp_path):
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(docs.openapi_spec()))
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    result = subprocess.run(
        [REDOCLY, "lint", "--format=json", str(document)], capture_output=True, text=True, env=env, timeout=120
    )
    report = json.loads(result.stdout)
    errors = [
        (p["ruleId"], p["message"], p["location"][0]["pointer"]) for p in report["problems"] if p["severity"] == "error"
    ]
    assert errors == [] and report["totals"]["errors"] == 0


@pytest.mark.parametrize("service_name", ["customer", "order"])
async def test_the_service_serves_its_asyncapi_document_and_a_page_of_it(
    aiohttp_client, customer_settings, order_settings, service_name
):
    if service_name == "customer":
        app, document = await create_customer_app(customer_settings), customer_asyncapi(customer_settings)
    else:
        app, document = await create_order_app(order_settings), order_asyncapi(order_settings)
    client = await aiohttp_client(app)
    response = await client.get("/asyncapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == document  # the topology of the settings it runs with
    response = await client.get("/docs/events")
    page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert "<script" not in page and "http" not in page  # offline: no script, nothing fetched
    text = _text(page)
    for operation in document["operations"].values():
        assert operation["summary"] in text
    for message in document["components"]["messages"].values():
        assert message["summary"] in text
    assert "data.customer_id" in text  # the payload's nested fields, each on a row


def _text(page: str) -> str:
    """The page's text, as a reader sees it (entities decoded)."""
    parts: list[str] = []
    parser = HTMLParser()
    parser.handle_data = parts.append  # type: ignore[method-assign]
    parser.feed(page)
    return " ".join(parts)


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
