"""The order service's OpenAPI schemas accept and reject the bodies its models do; money is a string."""

import json

import pytest

from order.openapi import openapi_spec
from order.schemas import ChangeStatusBody, CreateOrderBody
from shared.testing.docs import assert_spec_and_model_agree


def test_post_orders_documents_the_idempotency_key_the_503_and_the_location():
    operation = openapi_spec()["paths"]["/orders"]["post"]
    headers = {p["name"]: p for p in operation["parameters"] if "name" in p}
    assert headers["Idempotency-Key"]["in"] == "header" and headers["Idempotency-Key"]["required"] is False
    assert {"201", "409", "422", "503"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["503"]["content"]
    assert {"Location", "X-Request-ID"} <= set(operation["responses"]["201"]["headers"])


def test_list_parameters_are_documented_and_the_nested_route_takes_the_customer_from_its_path():
    paths = openapi_spec()["paths"]
    names = {p.get("name") for p in paths["/orders"]["get"]["parameters"]}
    assert {"limit", "offset", "customer_id", "status"} <= names
    nested = {p.get("name"): p for p in paths["/customers/{id}/orders"]["get"]["parameters"]}
    assert "customer_id" not in nested and nested["id"]["in"] == "path"
    assert nested["status"]["schema"]["$ref"] == "#/components/schemas/OrderStatus"


def test_every_status_is_one_order_status_schema():
    spec = openapi_spec()
    assert spec["components"]["schemas"]["OrderStatus"]["enum"] == [
        "created",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
    ]
    text = json.dumps(spec)
    assert text.count('"cancelled"') == 1  # nowhere inline: every status refers to OrderStatus
    paths = spec["paths"]
    by_name = {p.get("name"): p for p in paths["/orders"]["get"]["parameters"]}
    assert by_name["status"]["schema"]["$ref"] == "#/components/schemas/OrderStatus"


def test_each_kind_of_409_and_422_has_its_own_problem_type():
    responses = openapi_spec()["paths"]["/orders"]["post"]["responses"]
    types = {
        status: {
            e["value"]["type"] for e in responses[status]["content"]["application/problem+json"]["examples"].values()
        }
        for status in ("409", "422")
    }
    assert types == {
        "409": {"tag:shop-services,2026:problems/idempotency-key-in-flight"},
        "422": {
            "about:blank",
            "tag:shop-services,2026:problems/unknown-customer",
            "tag:shop-services,2026:problems/idempotency-key-reused",
        },
    }
    refused = openapi_spec()["paths"]["/orders/{id}"]["patch"]["responses"]["409"]
    assert "tag:shop-services,2026:problems/transition-refused" in refused["description"]


ORDER = {"customer_id": 1, "product_name": "Laptop", "quantity": 1, "price": 1200}


@pytest.mark.parametrize(
    ("component", "model", "body", "valid"),
    [
        ("CreateOrderBody", CreateOrderBody, {"order": ORDER}, True),
        ("CreateOrderBody", CreateOrderBody, {"order": {**ORDER, "price": "1200.00", "status": "created"}}, True),
        ("CreateOrderBody", CreateOrderBody, {"order": {**ORDER, "status": "paid"}}, False),
        ("CreateOrderBody", CreateOrderBody, {"order": {**ORDER, "quantity": 0}}, False),
        ("CreateOrderBody", CreateOrderBody, {"order": {**ORDER, "price": 0}}, False),
        ("CreateOrderBody", CreateOrderBody, {"order": {**ORDER, "customer_id": "1"}}, False),
        ("CreateOrderBody", CreateOrderBody, {"order": {**ORDER, "total": 5}}, False),
        ("CreateOrderBody", CreateOrderBody, {"order": {k: v for k, v in ORDER.items() if k != "price"}}, False),
        ("ChangeStatusBody", ChangeStatusBody, {"order": {"status": "paid"}}, True),
        ("ChangeStatusBody", ChangeStatusBody, {"order": {"status": "lost"}}, False),
        ("ChangeStatusBody", ChangeStatusBody, {"status": "paid"}, False),
    ],
)
def test_the_spec_accepts_and_rejects_the_bodies_the_models_do(component, model, body, valid):
    assert_spec_and_model_agree(openapi_spec(), component, model, body, valid)


def test_money_is_documented_as_a_string():
    order = openapi_spec()["components"]["schemas"]["OrderOut"]["properties"]
    assert order["price"]["type"] == order["total"]["type"] == "string"
