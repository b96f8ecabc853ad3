"""Order events end to end: outbox → relay → RabbitMQ → customer consumer, on the real broker."""

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiormq
import orjson

from conftest import broker_connected, broker_lost, make_settings, order_client_via
from customer.app import create_app as create_customer_app
from order import events
from order.app import create_app as create_order_app
from order.asyncapi import order_asyncapi
from order.housekeeping import purge_expired_keys
from order.keys import OUTBOX
from order.models import IdempotencyKey, Order, OutboxEvent
from order.outbox import store
from order.settings import OrderSettings
from shared.db import use_app_orm
from shared.testing.api import create_customer, get_json
from shared.testing.contracts import undocumented
from shared.testing.plugin import eventually, unique
from shared.testing.runs import BROKER_USER


def order_body(customer_id: int) -> dict:
    return {"order": {"customer_id": customer_id, "product_name": "Laptop", "quantity": 2, "price": "10.50"}}


async def place(client, customer_id: int, **kwargs) -> dict:
    response = await client.post("/orders", json=order_body(customer_id), **kwargs)
    assert response.status == 201, await response.text()
    return await response.json()


async def assert_count(customer_api, customer_id: int, expected: int) -> None:
    assert (await get_json(customer_api, f"/customers/{customer_id}"))["orders_count"] == expected


async def test_order_created_message_shape_and_headers(order_client, customer_api, event_tap):
    customer = await create_customer(customer_api)
    order = await place(order_client, customer["id"], headers={"X-Request-ID": "shape-test"})

    def mine():
        return [
            (m, orjson.loads(m.body))
            for m in event_tap.messages
            if orjson.loads(m.body)["data"]["order_id"] == order["id"]
        ]

    async def published():
        assert len(mine()) == 1

    await eventually(published)
    [(message, body)] = mine()
    props = message.header.properties
    assert props.delivery_mode == 2 and props.content_type == "application/json"
    assert props.message_id == body["event_id"] and str(uuid.UUID(body["event_id"])) == body["event_id"]
    assert props.headers["x-request-id"] == "shape-test"
    assert props.user_id == BROKER_USER  # the user it connected as, which the broker checked
    assert body["schema_version"] == 1 and body["event_type"] == "order.created" and body["occurred_at"]
    assert body["data"] == {
        "order_id": order["id"],
        "customer_id": customer["id"],
        "product_name": "Laptop",
        "quantity": 2,
        "price": "10.50",
        "status": "created",
    }


async def test_status_changes_are_published_in_order(order_client, customer_api, event_tap):
    customer = await create_customer(customer_api)
    order = await place(order_client, customer["id"])
    for status in ("paid", "shipped"):
        response = await order_client.patch(f"/orders/{order['id']}", json={"order": {"status": status}})
        assert response.status == 200

    def events_of_order():
        return [b for b in event_tap.bodies() if b["data"]["order_id"] == order["id"]]

    async def all_published():
        assert len(events_of_order()) == 3

    await eventually(all_published)
    assert [(b["event_type"], b["data"]["status"], b["data"].get("previous_status")) for b in events_of_order()] == [
        ("order.created", "created", None),
        ("order.status_changed", "paid", "created"),
        ("order.status_changed", "shipped", "paid"),
    ]


async def test_every_event_of_every_lifecycle_path_is_as_the_asyncapi_document_says(
    order_client, customer_api, event_tap, test_run
):
    """The conftest's `event_tap` checks every tapped event at teardown too; here, every path of the lifecycle."""
    customer = await create_customer(customer_api)
    delivered, cancelled = await place(order_client, customer["id"]), await place(order_client, customer["id"])
    for order, statuses in ((delivered, ("paid", "shipped", "delivered")), (cancelled, ("paid", "cancelled"))):
        for status in statuses:
            response = await order_client.patch(f"/orders/{order['id']}", json={"order": {"status": status}})
            assert response.status == 200, await response.text()
    ours = {delivered["id"], cancelled["id"]}

    async def all_published():
        assert len([b for b in event_tap.bodies() if b["data"]["order_id"] in ours]) == 7

    await eventually(all_published)
    document = order_asyncapi(OrderSettings.model_construct(events_exchange=test_run.exchange))
    assert undocumented(document, event_tap.messages) == []


async def test_the_contract_check_sees_a_message_the_document_does_not_allow(broker, event_tap, test_run):
    body = {"schema_version": 1, "event_id": str(uuid.uuid4()), "event_type": "order.created", "data": {}}
    await broker.basic_publish(
        orjson.dumps(body),
        exchange=test_run.exchange,
        routing_key="order.created",
        properties=aiormq.spec.Basic.Properties(content_type="application/json", message_type="order.created"),
    )
    await eventually(lambda: _tapped(event_tap, body["event_id"]))
    document = order_asyncapi(OrderSettings.model_construct(events_exchange=test_run.exchange))
    found = undocumented(document, event_tap.messages)
    event_tap.messages.clear()  # seen: the tap's own check at teardown has nothing left to refuse
    assert any("'occurred_at' is a required property" in f for f in found), found
    assert any("'order_id' is a required property" in f for f in found), found
    assert any("delivery_mode is None, not 2" in f for f in found), found
    assert any("message_id is" in f and f.endswith(f"not {body['event_id']!r}") for f in found), found


async def _tapped(event_tap, event_id: str) -> None:
    assert any(b.get("event_id") == event_id for b in event_tap.bodies())


async def test_200_concurrent_orders_for_one_customer_count_exactly_200(order_client, customer_api):
    customer = await create_customer(customer_api)
    responses = await asyncio.gather(
        *(order_client.post("/orders", json=order_body(customer["id"])) for _ in range(200))
    )
    assert [r.status for r in responses] == [201] * 200

    await eventually(lambda: assert_count(customer_api, customer["id"], 200), timeout=20)
    order_ids = [(await r.json())["id"] for r in responses]
    use_app_orm(order_client.app)
    # Deleted after the broker's confirm, which may land after the consumer already counted it.
    await eventually(lambda: _none_pending(order_ids), timeout=10)


async def test_orders_placed_while_the_broker_is_cut_are_counted_once_after(
    aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    proxy = await tcp_proxy("127.0.0.1", 5672)
    client = await order_client_via(aiohttp_client, test_run, customer_server, proxy)
    customer = await create_customer(customer_api)
    await place(client, customer["id"])
    await eventually(lambda: assert_count(customer_api, customer["id"], 1))

    await proxy.cut()
    waiting = [(await place(client, customer["id"]))["id"] for _ in range(5)]  # still 201: in the outbox
    use_app_orm(client.app)
    assert await OutboxEvent.filter(order_id__in=waiting).count() == 5
    await assert_count(customer_api, customer["id"], 1)

    await proxy.restore()
    await eventually(lambda: assert_count(customer_api, customer["id"], 6), timeout=20)


async def test_events_written_while_the_broker_was_away_go_out_when_it_is_back_not_at_the_sweep(
    aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    """A sweep a minute away and no new order after the broker's return: only the relay's own watch of the
    broker link can send the waiting events within the seconds this waits."""
    proxy = await tcp_proxy("127.0.0.1", 5672)
    client = await order_client_via(aiohttp_client, test_run, customer_server, proxy, outbox_sweep_interval=60.0)
    customer = await create_customer(customer_api)
    await proxy.cut()
    await broker_lost(client.app)
    for _ in range(3):
        await place(client, customer["id"])  # 201: in the outbox
    await proxy.restore()
    await eventually(lambda: assert_count(customer_api, customer["id"], 3), timeout=15)


async def test_a_relay_that_died_before_marking_sent_republishes_and_the_consumer_dedupes(
    order_client, customer_api, event_tap
):
    customer = await create_customer(customer_api)
    order = await place(order_client, customer["id"])
    await eventually(lambda: assert_count(customer_api, customer["id"], 1))

    # The state a crash between the broker's confirm and the DELETE leaves behind: sent, still in the outbox.
    use_app_orm(order_client.app)
    await eventually(lambda: _none_pending([order["id"]]))
    await store.add_event(events.order_created(await Order.get(id=order["id"]), request_id="test"))
    order_client.app[OUTBOX].wake()

    async def republished():
        assert len([b for b in event_tap.bodies("order.created") if b["data"]["order_id"] == order["id"]]) == 2

    await eventually(republished)
    use_app_orm(order_client.app)
    await eventually(lambda: _none_pending([order["id"]]))
    await assert_count(customer_api, customer["id"], 1)


async def _none_pending(order_ids: list[int]) -> None:
    assert not await OutboxEvent.filter(order_id__in=order_ids).exists()


async def test_two_relays_on_one_outbox_publish_each_event_once(
    aiohttp_client, order_client, order_settings, customer_api, event_tap
):
    second = await aiohttp_client(await create_order_app(order_settings))
    await broker_connected(second.app)
    customer = await create_customer(customer_api)
    clients = [order_client, second]
    responses = await asyncio.gather(
        *(clients[i % 2].post("/orders", json=order_body(customer["id"])) for i in range(60))
    )
    order_ids = {(await r.json())["id"] for r in responses}
    assert len(order_ids) == 60

    def published_ids():
        return [b["data"]["order_id"] for b in event_tap.bodies("order.created") if b["data"]["order_id"] in order_ids]

    async def all_published():
        assert set(published_ids()) == order_ids

    await eventually(all_published, timeout=15)
    await eventually(lambda: assert_count(customer_api, customer["id"], 60), timeout=15)
    assert sorted(published_ids()) == sorted(order_ids)  # none twice


async def test_the_relay_resumes_after_the_broker_restarts_without_a_service_restart(order_client, customer_api):
    """Closing the relay's connection from the broker side (as a broker restart does) is survived."""
    customer = await create_customer(customer_api)
    link = order_client.app[OUTBOX].link
    await link.reset("test: simulate a broker-side close")
    await place(order_client, customer["id"])
    await eventually(lambda: assert_count(customer_api, customer["id"], 1), timeout=15)
    assert link.is_up


async def test_the_key_purge_deletes_expired_keys_only(order_client, order_settings):
    use_app_orm(order_client.app)
    long_ago = datetime.now(UTC) - timedelta(hours=25)
    stale, kept = unique("stale-key"), unique("kept-key")
    await IdempotencyKey.create(key=stale, fingerprint="x", status_code=201, response="{}")
    await IdempotencyKey.filter(key=stale).update(created_at=long_ago)
    await IdempotencyKey.create(key=kept, fingerprint="x", status_code=201, response="{}")

    assert await purge_expired_keys(order_settings) >= 1

    assert not await IdempotencyKey.exists(key=stale)
    assert await IdempotencyKey.exists(key=kept)


async def test_order_created_waits_in_the_outbox_until_the_customer_queue_exists(
    aiohttp_client, aiohttp_server, test_run, run_names, customer_server, customer_api, customer_settings
):
    """The order service declares only the exchange; nothing is dropped before the consumer's queue exists."""
    lonely = replace(test_run, exchange=f"orders.lonely.{test_run.id}", queue=f"customer.lonely.{test_run.id}")
    run_names.append(lonely)  # its queues, retry queues and exchanges go at the end of the session
    names = {"events_exchange": lonely.exchange, "orders_queue": lonely.queue}
    settings = make_settings(
        OrderSettings, test_run, database_url=test_run.order_db, customer_service_url=str(customer_server.make_url(""))
    ).model_copy(update=names)
    client = await aiohttp_client(await create_order_app(settings))
    await broker_connected(client.app)
    customer = await create_customer(customer_api)
    order = await place(client, customer["id"])

    async def tried_and_pending():
        use_app_orm(client.app)
        row = await OutboxEvent.get(order_id=order["id"])
        assert row.attempts >= 1  # tried, refused as unroutable, still pending

    await eventually(tried_and_pending)

    # The customer service comes up on these names: its queue appears and the event goes through.
    consumer = await aiohttp_server(await create_customer_app(customer_settings.model_copy(update=names)))
    await broker_connected(consumer.app)
    await eventually(lambda: assert_count(customer_api, customer["id"], 1), timeout=10)


async def test_a_commit_wakes_its_own_process_relay_without_the_notification(
    aiohttp_client, order_settings, customer_api, event_tap
):
    """No LISTEN session (its URL refuses) and a sweep a minute away: only the handlers' own wake-up
    can send the events within the few seconds this waits."""
    settings = order_settings.model_copy(
        update={"listen_url": "postgres://nobody@127.0.0.1:1/nothing", "outbox_sweep_interval": 60.0}
    )
    client = await aiohttp_client(await create_order_app(settings))
    await broker_connected(client.app)
    customer = await create_customer(customer_api)
    order = await place(client, customer["id"])
    response = await client.patch(f"/orders/{order['id']}", json={"order": {"status": "paid"}})
    assert response.status == 200

    async def both_published():
        bodies = [body for body in event_tap.bodies() if body["data"]["order_id"] == order["id"]]
        assert [(body["event_type"], body["data"]["status"]) for body in bodies] == [
            ("order.created", "created"),
            ("order.status_changed", "paid"),
        ]

    await eventually(both_published)
