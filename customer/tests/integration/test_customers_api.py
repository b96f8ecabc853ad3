import asyncio
import gc

import asyncpg
import pytest

from conftest import make_settings
from customer.app import create_app
from customer.settings import CustomerSettings
from shared.db import asyncpg_dsn, database_name
from shared.testing.api import assert_problem, create_customer, get_json
from shared.testing.plugin import unique
from shared.web import YOUNG_GENERATION_THRESHOLD


async def test_create_returns_201_location_and_the_stored_customer(customer_client):
    email = f"{unique('juan')}@example.com"
    response = await customer_client.post(
        "/customers", json={"customer": {"name": "Juan", "address": "Bogotá", "email": email}}
    )
    assert response.status == 201
    body = await response.json()
    assert response.headers["Location"] == f"/customers/{body['id']}"
    assert body["name"] == "Juan" and body["address"] == "Bogotá" and body["email"] == email
    assert body["orders_count"] == 0
    assert set(body) == {"id", "name", "address", "email", "orders_count", "created_at", "updated_at"}
    assert await get_json(customer_client, f"/customers/{body['id']}") == body


async def test_email_is_optional(customer_client):
    response = await customer_client.post("/customers", json={"customer": {"name": "No Mail", "address": "x"}})
    assert response.status == 201
    assert (await response.json())["email"] is None


async def test_taken_email_is_a_409_on_field_email_and_stores_nothing(customer_client):
    first = await create_customer(customer_client)
    before = (await get_json(customer_client, "/customers"))["total"]
    response = await customer_client.post(
        "/customers", json={"customer": {"name": "Other", "address": "y", "email": first["email"]}}
    )
    await assert_problem(response, 409, field="email")
    assert (await get_json(customer_client, "/customers"))["total"] == before


async def test_missing_customer_is_a_404_problem(customer_client):
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"customer": {"name": "x"}}} if method == "patch" else {}
        response = await getattr(customer_client, method)("/customers/2147483000", **kwargs)
        await assert_problem(response, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/customers/99999999999999999999",
        "/customers/" + "9" * 5000,  # more digits than Python agrees to parse
        "/customers/00000000001",  # 11 digits: not parsed, whatever they add up to
        "/customers/0",
        "/customers/-1",
        "/customers/abc",
        "/customers/1.5",
        "/nope",
    ],
)
async def test_impossible_ids_and_unknown_paths_are_404_problems(customer_client, path):
    await assert_problem(await customer_client.get(path), 404)


async def test_wrong_method_is_a_405_problem(customer_client):
    response = await customer_client.put("/customers/1", json={})
    await assert_problem(response, 405)
    assert "PATCH" in response.headers["Allow"]


async def test_patch_changes_only_the_sent_fields(customer_client):
    customer = await create_customer(customer_client, name="Before", address="Old")
    response = await customer_client.patch(f"/customers/{customer['id']}", json={"customer": {"name": "After"}})
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "After" and body["address"] == "Old" and body["email"] == customer["email"]
    assert body["updated_at"] > customer["updated_at"]
    assert await get_json(customer_client, f"/customers/{customer['id']}") == body


async def test_patch_can_clear_the_email(customer_client):
    customer = await create_customer(customer_client)
    response = await customer_client.patch(f"/customers/{customer['id']}", json={"customer": {"email": None}})
    assert (await response.json())["email"] is None


@pytest.mark.parametrize("patch", [{"orders_count": 5}, {"name": None}, {"name": ""}, {}, {"id": 7}])
async def test_bad_patches_are_422_and_change_nothing(customer_client, patch):
    customer = await create_customer(customer_client)
    response = await customer_client.patch(f"/customers/{customer['id']}", json={"customer": patch})
    await assert_problem(response, 422)
    assert await get_json(customer_client, f"/customers/{customer['id']}") == customer


async def test_patch_to_a_taken_email_is_409(customer_client):
    first, second = await create_customer(customer_client), await create_customer(customer_client)
    response = await customer_client.patch(f"/customers/{second['id']}", json={"customer": {"email": first["email"]}})
    await assert_problem(response, 409, field="email")


async def test_delete_removes_the_customer(customer_client):
    customer = await create_customer(customer_client)
    response = await customer_client.delete(f"/customers/{customer['id']}")
    assert response.status == 204
    await assert_problem(await customer_client.get(f"/customers/{customer['id']}"), 404)
    await assert_problem(await customer_client.delete(f"/customers/{customer['id']}"), 404)


async def test_list_is_newest_first_with_pages(customer_client):
    created = [await create_customer(customer_client) for _ in range(3)]
    page = await get_json(customer_client, "/customers?limit=2&offset=0")
    assert [c["id"] for c in page["items"]] == [created[2]["id"], created[1]["id"]]
    assert page["limit"] == 2 and page["offset"] == 0 and page["total"] >= 3
    second = await get_json(customer_client, "/customers?limit=2&offset=1")
    assert [c["id"] for c in second["items"]] == [created[1]["id"], created[0]["id"]]


async def test_list_defaults_and_clamps_the_limit(customer_client):
    assert (await get_json(customer_client, "/customers"))["limit"] == 50
    page = await get_json(customer_client, "/customers?limit=1000")
    assert page["limit"] == 200


async def test_offset_past_the_end_gives_no_items_and_the_true_total(customer_client):
    await create_customer(customer_client)
    total = (await get_json(customer_client, "/customers"))["total"]
    page = await get_json(customer_client, "/customers?offset=10000")
    assert page["items"] == [] and page["total"] == total and page["next"] is None


async def test_an_offset_past_page_max_offset_is_a_422_that_points_to_the_cursor(customer_client):
    problem = await assert_problem(await customer_client.get("/customers?offset=10001"), 422, field="offset")
    assert "cursor" in problem["detail"]


async def test_the_next_cursor_reads_on_from_the_last_customer_of_a_page(customer_client):
    for _ in range(3):
        await create_customer(customer_client)
    first = await get_json(customer_client, "/customers?limit=2&count=false")
    assert "total" not in first
    response = await customer_client.get("/customers?limit=2")
    assert response.headers["Link"] == f'</customers?cursor={first["next"]}>; rel="next"'
    second = await get_json(customer_client, f"/customers?cursor={first['next']}")
    by_offset = await get_json(customer_client, "/customers?limit=2&offset=2")
    assert second["items"] == by_offset["items"] and second["limit"] == 2 and "total" not in second


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("limit=", "limit"),
    ],
)
async def test_bad_page_parameters_are_422_naming_the_parameter(customer_client, query, field):
    await assert_problem(await customer_client.get(f"/customers?{query}"), 422, field=field)


async def test_request_id_is_echoed_or_made_up(customer_client):
    response = await customer_client.get("/customers/1", headers={"X-Request-ID": "my-id-123"})
    assert response.headers["X-Request-ID"] == "my-id-123"
    response = await customer_client.get("/nope")
    assert len(response.headers["X-Request-ID"]) >= 16


async def test_a_started_service_collects_young_objects_less_often(aiohttp_client, customer_settings):
    """shared/web.py tunes the garbage collector once the app has started."""
    python_default = 700
    gc.set_threshold(python_default, *gc.get_threshold()[1:])
    gc.unfreeze()  # what an app started before in this process froze
    await aiohttp_client(await create_app(customer_settings))
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD > python_default
    assert gc.get_freeze_count() > 0  # and what start-up built is out of every collection


async def test_concurrent_creates_with_one_email_store_one_customer(customer_client):
    email = f"{unique('race')}@example.com"
    body = {"customer": {"name": "Racer", "address": "Track", "email": email}}
    responses = await asyncio.gather(*(customer_client.post("/customers", json=body) for _ in range(5)))
    assert sorted(r.status for r in responses) == [201, 409, 409, 409, 409]


@pytest.mark.parametrize(
    "sent, echoed",
    [("{3f2a-UUID}", True), ("a" * 128, True), ("a" * 129, False), ("two words", False), ("caf\u00e9", False)],
)
async def test_a_request_id_is_echoed_when_it_is_visible_ascii(customer_client, sent, echoed):
    response = await customer_client.get("/health", headers={"X-Request-ID": sent})
    assert (response.headers["X-Request-ID"] == sent) is echoed


async def test_a_statement_past_its_deadline_is_a_503_and_the_service_goes_on(aiohttp_client, scratch_run):
    run = scratch_run()
    admin = await asyncpg.connect(asyncpg_dsn(run.customer_db))
    try:  # what `manage migrate` sets from DATABASE_STATEMENT_TIMEOUT, shorter
        await admin.execute(f'ALTER DATABASE "{database_name(run.customer_db)}" SET statement_timeout = 300')
    finally:
        await admin.close()
    settings = make_settings(CustomerSettings, run, database_url=run.customer_db)
    client = await aiohttp_client(await create_app(settings))
    customer = await create_customer(client)
    locker = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        async with locker.transaction():  # every read of the table waits behind this lock
            await locker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            response = await client.get(f"/customers/{customer['id']}")
            problem = await assert_problem(response, 503)
            assert response.headers["Retry-After"] == "1" and "in time" in problem["detail"]
    finally:
        await locker.close()
    await get_json(client, f"/customers/{customer['id']}")
