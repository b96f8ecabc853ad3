"""Dead letters as data: moved from the queue into the table exactly once, then listed, replayed, edited,
discarded - each change in the audit."""

import uuid

import orjson
from pamqp.commands import Basic

from conftest import broker_connected, dead_letter_rows, make_settings
from customer.app import create_app as create_customer_app
from customer.db_config import APP
from customer.dead_letters import repository as dead_letter_repository
from customer.housekeeping import purge_dead_letters
from customer.metrics import EVENTS_DEAD_LETTERED
from customer.models import Customer
from customer.settings import CustomerSettings
from shared.db import db, use_app_orm
from shared.testing.api import changes, create_customer, get_json, order_created_event
from shared.testing.plugin import eventually
from shared.testing.runs import publish_order_created

MAX_INT = 2**31 - 1


async def publish(channel, run, body: bytes, message_id: str | None = None) -> None:
    await publish_order_created(channel, run.exchange, body, delivery_mode=2, message_id=message_id)


async def app_of(aiohttp_client, run, **overrides):
    settings = make_settings(CustomerSettings, run, database_url=run.customer_db, **overrides)
    client = await aiohttp_client(await create_customer_app(settings))
    await broker_connected(client.app)
    return client


async def orders_count(client, customer_id: int) -> int:
    return (await get_json(client, f"/customers/{customer_id}"))["orders_count"]


async def post(client, path: str, body: dict, status: int = 200) -> dict:
    response = await client.post(path, json=body)
    assert response.status == status, await response.text()
    return await response.json()


async def queue_depth(channel, queue: str) -> int:
    return (await channel.queue_declare(queue, passive=True)).message_count


async def test_poison_and_a_handler_failure_that_exhausts_its_retries_each_end_as_one_row(
    aiohttp_client, scratch_run, broker
):
    run = scratch_run(retry_delays=(1,))
    client = await app_of(aiohttp_client, run)
    customer = await create_customer(client)
    use_app_orm(client.app)
    await Customer.filter(id=customer["id"]).update(orders_count=MAX_INT)  # the next order overflows: a bug
    await publish(broker, run, b"not json at all", message_id="poison-1")
    failing = str(uuid.uuid4())
    await publish(broker, run, order_created_event(customer["id"], failing))

    poison = (await dead_letter_rows(client, 1, reason="invalid_event"))[0]
    assert poison["key"].startswith("message:poison-1:") and poison["event_id"] is None and poison["attempts"] == 1
    exhausted = (await dead_letter_rows(client, 1, reason="retries_exhausted"))[0]
    assert exhausted["event_id"] == failing and exhausted["customer_id"] == customer["id"]
    assert exhausted["attempts"] == 2 and "out of range" in exhausted["error"] and exhausted["state"] == "open"
    assert await queue_depth(broker, f"{run.queue}.dlq") == 0  # moved, not copied

    # The cause fixed, a replay counts the order once; a second replay counts nothing. Neither reaches any
    # queue but the consumer's: a tap on the events exchange sees nothing.
    await Customer.filter(id=customer["id"]).update(orders_count=0)
    tap = (await broker.queue_declare("", exclusive=True, auto_delete=True)).queue
    await broker.queue_bind(tap, run.exchange, routing_key="#")
    for _ in range(2):
        done = await post(client, f"/ops/dead-letters/{exhausted['id']}/replay", {"reason": "fixed the overflow"})
        assert done["state"] == "replayed" and done["event_id"] == failing
    marker = await create_customer(client)
    await publish(broker, run, order_created_event(marker["id"]))  # after both replays in the one queue

    async def marker_counted():
        assert await orders_count(client, marker["id"]) == 1

    await eventually(marker_counted, timeout=10)
    assert await orders_count(client, customer["id"]) == 1
    assert await queue_depth(broker, tap) == 1  # only the marker, published there by the test
    assert await queue_depth(broker, f"{run.queue}.retry.1s") == 0
    detail = await get_json(client, f"/ops/dead-letters/{exhausted['id']}")
    assert detail["state"] == "replayed" and len(detail["history"]) == 1
    assert [(a["action"], a["actor"]) for a in changes(detail)] == [("replay", "anonymous (AUTH_MODE=off)")] * 2


async def test_an_event_that_crashes_the_consumer_past_the_delivery_limit_ends_as_one_row(
    aiohttp_client, scratch_run, broker
):
    """The broker dead-letters it (the delivery limit): here a channel that takes it and dies, each time."""
    run = scratch_run()
    counted = EVENTS_DEAD_LETTERED.labels("delivery_limit")
    counted_before = counted._value.get()
    first = await app_of(aiohttp_client, run, delivery_limit=1)  # declares the queues, then goes away
    await first.close()
    event_id = str(uuid.uuid4())
    await publish(broker, run, order_created_event(1, event_id))
    connection = broker.connection
    for _ in range(2):  # delivered, left unsettled, returned: past a limit of 1
        channel = await connection.channel()
        message = await channel.basic_get(run.queue, no_ack=False)
        assert message.delivery_tag is not None
        await channel.close()

    async def dead_lettered():
        assert await queue_depth(broker, f"{run.queue}.dlq") == 1

    await eventually(dead_lettered, timeout=10)
    client = await app_of(aiohttp_client, run, delivery_limit=1)
    row = (await dead_letter_rows(client, 1))[0]
    assert row["reason"] == "delivery_limit" and row["event_id"] == event_id and row["attempts"] >= 2
    assert counted._value.get() - counted_before == 1  # what the broker dead-letters counts too (the alert)


async def test_a_dead_letter_delivered_twice_is_recorded_once(customer_client, customer_settings, broker):
    """The ack after the commit was lost: the queue delivers the same dead-lettering again."""
    event_id = str(uuid.uuid4())
    body = order_created_event(2_000_000_001, event_id)
    headers = {"x-dead-letter-kind": "unknown_customer", "x-dead-letter-reason": "gone", "x-dead-letter-id": "occ-1"}
    for _ in range(2):
        await broker.basic_publish(
            body,
            exchange=customer_settings.dead_letter_exchange,
            routing_key="",
            properties=Basic.Properties(delivery_mode=2, headers=headers),
        )
    row = (await dead_letter_rows(customer_client, 1, customer_id="2000000001"))[0]
    await eventually(lambda: _depth_is_zero(broker, customer_settings.dead_letter_queue))
    detail = await get_json(customer_client, f"/ops/dead-letters/{row['id']}")
    assert detail["key"] == event_id and detail["attempts"] == 1 and len(detail["history"]) == 1


async def _depth_is_zero(broker, queue: str) -> None:
    assert await queue_depth(broker, queue) == 0


async def test_edit_and_replay_keeps_the_event_id_and_stores_the_diff(customer_client, broker, test_run):
    customer = await create_customer(customer_client)
    event = orjson.loads(order_created_event(customer["id"]))
    event["data"]["price"] = "twelve"
    await publish(broker, test_run, orjson.dumps(event))
    row = (await dead_letter_rows(customer_client, 1, customer_id=str(customer["id"])))[0]
    assert row["reason"] == "invalid_event"

    fixed = {**event, "data": {**event["data"], "price": "12.00"}}
    replay = f"/ops/dead-letters/{row['id']}/replay"
    refused = await post(
        customer_client, replay, {"reason": "x", "body": {**fixed, "event_id": str(uuid.uuid4())}}, 422
    )
    assert "event id" in refused["detail"]
    still_bad = await post(customer_client, replay, {"reason": "x", "body": event}, 422)
    assert "price" in still_bad["detail"]
    done = await post(customer_client, replay, {"reason": "typo", "body": fixed})
    assert done["action"] == "edit_and_replay" and done["event_id"] == event["event_id"]

    async def counted():
        assert await orders_count(customer_client, customer["id"]) == 1

    await eventually(counted, timeout=10)
    detail = await get_json(customer_client, f"/ops/dead-letters/{row['id']}")
    assert orjson.loads(detail["body"])["data"]["price"] == "12.00"
    [audit] = changes(detail)
    assert audit["reason"] == "typo" and audit["detail"]["diff"] == [
        {"path": "/data/price", "from": "twelve", "to": "12.00"}
    ]


async def test_groups_bulk_dry_run_and_discard(customer_client, broker, test_run):
    missing = 2_000_000_000 + uuid.uuid4().int % 100_000_000
    for _ in range(3):
        await publish(broker, test_run, order_created_event(missing))
    await dead_letter_rows(customer_client, 3, customer_id=str(missing))
    groups = (await get_json(customer_client, "/ops/dead-letters/groups?reason=unknown_customer&state=open"))["groups"]
    group = next(g for g in groups if str(missing) in g["error"])
    assert group["count"] == 3

    selection = {"filter": {"reason": "unknown_customer", "error": group["error"]}, "reason": "customer gone"}
    dry = await post(customer_client, "/ops/dead-letters/discard", {**selection, "dry_run": True})
    assert dry["matched"] == 3 and len(dry["done"]) == 3
    await dead_letter_rows(customer_client, 3, customer_id=str(missing), state="open")  # nothing changed
    done = await post(customer_client, "/ops/dead-letters/discard", selection)
    assert len(done["done"]) == 3
    await dead_letter_rows(customer_client, 3, customer_id=str(missing), state="discarded")
    use_app_orm(customer_client.app)
    audit = await dead_letter_repository.audit_of(None, 1000)
    mine = [a for a in audit if a["reason"] == "customer gone"]
    assert sorted(a["action"] for a in mine) == ["discard"] * 3 + ["discard_dry_run"]
    refused = await post(customer_client, f"/ops/dead-letters/{done['done'][0]['id']}/replay", {"reason": "x"}, 409)
    assert "discarded" in refused["detail"]


async def test_ops_routes_refuse_without_auth_unless_allowed(aiohttp_client, customer_settings):
    settings = customer_settings.model_copy(update={"ops_allow_unauthenticated": False})
    client = await aiohttp_client(await create_customer_app(settings))
    for path in ("/ops/dead-letters", "/ops/console"):
        response = await client.get(path)
        assert response.status == 403
        assert "OPS_ALLOW_UNAUTHENTICATED" in (await response.json())["detail"]


async def test_ops_open_without_a_token_is_said_at_start(customer_settings, caplog):
    """What make run allows on a developer's machine is logged, so that nobody runs it so unknowingly."""
    for allowed in (False, True):
        caplog.clear()
        await create_customer_app(customer_settings.model_copy(update={"ops_allow_unauthenticated": allowed}))
        warned = [r for r in caplog.records if "OPS_ALLOW_UNAUTHENTICATED=true" in r.getMessage()]
        assert len(warned) == allowed and all(r.levelname == "WARNING" for r in warned)


async def test_dead_letters_and_their_audit_past_the_retention_are_purged(customer_client, customer_settings, broker):
    missing = 2_000_000_000 + uuid.uuid4().int % 100_000_000
    await publish_order_created(broker, customer_settings.events_exchange, order_created_event(missing))
    [old] = await dead_letter_rows(customer_client, 1, customer_id=str(missing))
    await post(customer_client, f"/ops/dead-letters/{old['id']}/discard", {"reason": "old"})
    use_app_orm(customer_client.app)
    conn = db(APP)
    await conn.execute_query(
        "UPDATE dead_letters SET last_failed_at = now() - interval '31 days' WHERE id = $1", [old["id"]]
    )
    await conn.execute_query(
        "UPDATE dead_letter_audit SET at = now() - interval '31 days' WHERE dead_letter_key = $1", [old["key"]]
    )
    assert await purge_dead_letters(customer_settings) >= 2
    assert (await customer_client.get(f"/ops/dead-letters/{old['id']}")).status == 404
    assert await dead_letter_repository.audit_of(old["key"], 10) == []


async def test_with_tokens_the_routes_take_ops_dead_letters_and_the_audit_names_the_tokens_subject(
    aiohttp_client, customer_settings, own_issuer, broker
):
    auth = own_issuer.service_settings()
    settings = customer_settings.model_copy(update={**auth, "ops_allow_unauthenticated": False})
    client = await aiohttp_client(await create_customer_app(settings))
    await broker_connected(client.app)
    missing = 2_000_000_000 + uuid.uuid4().int % 100_000_000
    await publish_order_created(broker, settings.events_exchange, order_created_event(missing))
    operator = {"Authorization": f"Bearer {own_issuer.token('ops:dead-letters', sub='ops-alice')}"}
    reader = {"Authorization": f"Bearer {own_issuer.token('customers:read')}"}
    assert (await client.get("/ops/dead-letters")).status == 401
    assert (await client.get("/ops/dead-letters", headers=reader)).status == 403
    assert (await client.get("/ops/console")).status == 200  # the page is open; its calls are not

    async def listed():
        response = await client.get(f"/ops/dead-letters?customer_id={missing}", headers=operator)
        assert response.status == 200
        items.extend((await response.json())["items"])
        assert items

    items: list = []
    await eventually(listed, timeout=10)
    response = await client.post(
        f"/ops/dead-letters/{items[0]['id']}/discard", json={"reason": "customer erased"}, headers=operator
    )
    assert response.status == 200, await response.text()
    detail = await (await client.get(f"/ops/dead-letters/{items[0]['id']}", headers=operator)).json()
    # Newest first: reading the body (personal data) is kept as well as the change.
    assert [(a["actor"], a["action"]) for a in detail["audit"]] == [("ops-alice", "show"), ("ops-alice", "discard")]
