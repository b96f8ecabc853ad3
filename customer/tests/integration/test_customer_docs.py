"""The customer service's OpenAPI schemas accept and reject the bodies its models do."""

import pytest

from customer.openapi import openapi_spec
from customer.schemas import CreateCustomerBody, UpdateCustomerBody
from shared.testing.docs import assert_spec_and_model_agree


@pytest.mark.parametrize(
    ("component", "model", "body", "valid"),
    [
        ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada", "address": "x"}}, True),
        (
            "CreateCustomerBody",
            CreateCustomerBody,
            {"customer": {"name": "Ada", "address": "x", "email": "a@b.co"}},
            True,
        ),
        ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada", "address": "x", "vip": True}}, False),
        ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "Ada"}}, False),
        ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "", "address": "x"}}, False),
        ("CreateCustomerBody", CreateCustomerBody, {"customer": {"name": "A" * 201, "address": "x"}}, False),
        (
            "CreateCustomerBody",
            CreateCustomerBody,
            {"customer": {"name": "Ada", "address": "x", "email": "nope"}},
            False,
        ),
        ("CreateCustomerBody", CreateCustomerBody, {"name": "Ada", "address": "x"}, False),
        ("UpdateCustomerBody", UpdateCustomerBody, {"customer": {"address": "y"}}, True),
        ("UpdateCustomerBody", UpdateCustomerBody, {"customer": {"orders_count": 3}}, False),
        ("UpdateCustomerBody", UpdateCustomerBody, {"customer": {"name": None}}, False),
    ],
)
def test_the_spec_accepts_and_rejects_the_bodies_the_models_do(component, model, body, valid):
    assert_spec_and_model_agree(openapi_spec(), component, model, body, valid)


def test_page_parameters_are_documented():
    parameters = {p.get("name"): p for p in openapi_spec()["paths"]["/customers"]["get"]["parameters"]}
    assert parameters["limit"]["schema"]["default"] == 50
    assert parameters["offset"]["schema"] | {"description": None} == {
        "default": 0,
        "minimum": 0,
        "maximum": 2**63 - 1,
        "title": "Offset",
        "type": "integer",
        "description": None,
    }
    assert "cursor" in parameters["offset"]["schema"]["description"]
    assert parameters["count"]["schema"]["default"] is True
    assert "cursor" in parameters
