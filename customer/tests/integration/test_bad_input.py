"""Every kind of malformed request is a 4xx problem naming what is wrong, and stores nothing."""

import pytest

from shared.testing.api import assert_problem, get_json

VALID = {"name": "Ada", "address": "London", "email": "ada-bad-input@example.com"}


def with_(**fields):
    return {"customer": {**VALID, **fields}}


def without(field):
    return {"customer": {k: v for k, v in VALID.items() if k != field}}


@pytest.mark.parametrize(
    "body, field",
    [
        (with_(name=""), "name"),
        (with_(name="   "), "name"),
        (with_(name="x" * 201), "name"),
        (with_(address="y" * 201), "address"),
        (with_(name=123), "name"),
        (with_(name=None), "name"),
        (with_(name="nul\u0000byte"), "name"),
        (with_(email="not-an-email"), "email"),
        (with_(email=f"{'a' * 250}@example.com"), "email"),
        (with_(orders_count=3), "orders_count"),
        (with_(unknown="x"), "unknown"),
        (without("name"), "name"),
        (without("address"), "address"),
        ({"name": "Ada", "address": "London"}, "customer"),
        ({"customer": "Ada"}, "customer"),
        ([1, 2], "body"),
    ],
)
async def test_invalid_bodies_are_422_naming_the_field(customer_client, body, field):
    before = (await get_json(customer_client, "/customers"))["total"]
    await assert_problem(await customer_client.post("/customers", json=body), 422, field=field)
    assert (await get_json(customer_client, "/customers"))["total"] == before


@pytest.mark.parametrize("data", [b"{not json", b'{"customer": ', b"\xff\xfe", b"   "])
async def test_malformed_json_is_400(customer_client, data):
    response = await customer_client.post("/customers", data=data, headers={"Content-Type": "application/json"})
    await assert_problem(response, 400)


async def test_wrong_content_type_is_415(customer_client):
    response = await customer_client.post("/customers", data=b"name=Ada", headers={"Content-Type": "text/plain"})
    await assert_problem(response, 415)


async def test_body_over_one_mib_is_413(customer_client):
    big = {"customer": {**VALID, "name": "x" * (1024 * 1024 + 10)}}
    await assert_problem(await customer_client.post("/customers", json=big), 413)
