"""The operator tools, run against the test run's databases and broker names."""

import random

import orjson

from customer import ops as customer_ops
from customer.dead_letters import cli as dead_letter_cli
from customer.models import Customer
from order import ops as order_ops
from order.keys import OUTBOX
from order.models import OutboxEvent
from shared.cli import POSTGRES, RABBITMQ, Target
from shared.db import use_app_orm
from shared.testing.api import changes, create_customer, get_json, order_created_event
from shared.testing.plugin import eventually
from shared.testing.runs import publish_order_created


async def count(customer_api, customer_id: int) -> int:
    return (await get_json(customer_api, f"/customers/{customer_id}"))["orders_count"]


async def ops(settings, capsys, *argv: str) -> tuple[int, object]:
    """Run a `customer.ops` command with `--json` against these settings; its exit code and output."""
    capsys.readouterr()
    args = customer_ops.build_parser().parse_args([*argv, "--json"])
    database = Target(POSTGRES, "CUSTOMER_DATABASE_URL", settings.database_url)
    broker = Target(RABBITMQ, "AMQP_URL", settings.amqp_url)
    code = await dead_letter_cli.run(args, settings, database, broker)
    return code, orjson.loads(capsys.readouterr().out or "null")


async def test_dead_letters_are_listed_from_the_database_then_replayed_after_the_fix(
    customer_client, customer_settings, broker, test_run, capsys
):
    missing_id = random.randint(1_500_000_000, 2_000_000_000)
    await publish_order_created(broker, test_run.exchange, order_created_event(missing_id))
    # Listing needs no broker at all, so it cannot redeliver anything: here it has none to reach.
    no_broker = customer_settings.model_copy(update={"amqp_url": "amqp://guest:guest@127.0.0.1:9/"})
    rows: list = []

    async def dead_lettered():
        _, listed = await ops(no_broker, capsys, "dead-letters", "--customer", str(missing_id))
        rows[:] = listed
        assert len(rows) == 1 and rows[0]["reason"] == "unknown_customer"

    await eventually(dead_lettered)
    code, groups = await ops(no_broker, capsys, "dead-letter-groups", "--state", "open")
    assert code == 0 and any(str(missing_id) in group["error"] for group in groups)

    use_app_orm(customer_client.app)  # the fix: the customer exists now
    await Customer.create(id=missing_id, name="Late", address="Arrived")
    code, dry = await ops(
        customer_settings, capsys, "replay-dead-letters", "--customer", str(missing_id), "--dry-run",
        "--by", "ada", "--reason", "customer restored",
    )  # fmt: skip
    assert code == 0 and dry["dry_run"] and len(dry["done"]) == 1
    code, done = await ops(
        customer_settings, capsys, "replay-dead-letters", str(rows[0]["id"]), "--by", "ada", "--reason", "restored"
    )
    assert code == 0 and done[0]["state"] == "replayed"

    async def applied():
        assert await count(customer_client, missing_id) == 1

    await eventually(applied)
    _, shown = await ops(no_broker, capsys, "dead-letter", str(rows[0]["id"]))
    assert shown["state"] == "replayed"
    assert [(a["actor"], a["action"], a["reason"]) for a in changes(shown)] == [("ada", "replay", "restored")]


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
