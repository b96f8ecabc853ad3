"""The operator tools, run against the test run's databases and broker names."""

import random

from pamqp.commands import Basic

from customer import ops as customer_ops
from customer.models import Customer
from order import ops as order_ops
from order.keys import OUTBOX
from order.models import OutboxEvent
from shared.db import use_app_orm
from shared.testing.api import create_customer, get_json, order_created_event
from shared.testing.plugin import eventually
from shared.testing.runs import BROKER_USER


async def count(customer_api, customer_id: int) -> int:
    return (await get_json(customer_api, f"/customers/{customer_id}"))["orders_count"]


async def test_dead_letters_are_listed_then_replayed_after_the_fix(
    customer_client, customer_settings, broker, test_run, capsys
):
    missing_id = random.randint(1_500_000_000, 2_000_000_000)
    await broker.basic_publish(
        order_created_event(missing_id),
        exchange=test_run.exchange,
        routing_key="order.created",
        properties=Basic.Properties(user_id=BROKER_USER),
    )

    async def dead_lettered():
        await customer_ops.list_dead_letters(customer_settings, limit=1000)
        assert str(missing_id) in capsys.readouterr().out

    await eventually(dead_lettered)

    use_app_orm(customer_client.app)  # the fix: the customer exists now
    await Customer.create(id=missing_id, name="Late", address="Arrived")
    await customer_ops.replay_dead_letters(customer_settings, limit=1000)

    async def applied():
        assert await count(customer_client, missing_id) == 1

    await eventually(applied)
    await customer_ops.list_dead_letters(customer_settings, limit=1000)
    assert str(missing_id) not in capsys.readouterr().out


async def test_reconcile_reports_drift_and_exits_non_zero(order_client, customer_api, customer_settings, capsys):
    customer = await create_customer(customer_api)
    response = await order_client.post(
        "/orders", json={"order": {"customer_id": customer["id"], "product_name": "Pen", "quantity": 1, "price": 2}}
    )
    assert response.status == 201

    async def counted():
        assert await count(customer_api, customer["id"]) == 1

    await eventually(counted)
    order_url = str(order_client.make_url(""))
    assert await customer_ops.reconcile(customer_settings, order_url, [customer["id"]]) == 0

    use_app_orm(customer_api.app)
    await Customer.filter(id=customer["id"]).update(orders_count=5)
    assert await customer_ops.reconcile(customer_settings, order_url, [customer["id"]]) == 1
    assert f"customer {customer['id']}: orders_count 5, order service holds 1" in capsys.readouterr().out


async def test_republish_sends_the_same_event_again_and_counts_do_not_change(order_client, customer_api, event_tap):
    customer = await create_customer(customer_api)
    response = await order_client.post(
        "/orders", json={"order": {"customer_id": customer["id"], "product_name": "Pen", "quantity": 1, "price": 2}}
    )
    order = await response.json()

    def published_ids():
        return [b["event_id"] for b in event_tap.bodies("order.created") if b["data"]["order_id"] == order["id"]]

    async def published(times: int):
        assert len(published_ids()) == times

    async def sent():  # confirmed, so deleted from the outbox: a republish writes it again
        assert not await OutboxEvent.filter(order_id=order["id"]).exists()

    await eventually(lambda: published(1))
    use_app_orm(order_client.app)
    await eventually(sent)
    assert await order_ops.republish(order["id"]) == 0
    order_client.app[OUTBOX].wake()
    await eventually(lambda: published(2))
    await eventually(sent)
    assert await order_ops.republish(order["id"]) == 0
    order_client.app[OUTBOX].wake()
    await eventually(lambda: published(3))
    assert len(set(published_ids())) == 1
    assert await count(customer_api, customer["id"]) == 1
