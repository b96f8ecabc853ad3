"""The operator's page in a real (headless) browser: it loads offline, shows a dead letter the test made,
and a replay clicked on it applies the event exactly once."""

import random

from conftest import dead_letter_rows
from customer.models import Customer
from shared.db import use_app_orm
from shared.testing.api import changes, create_customer, get_json, order_created_event
from shared.testing.browser import chromium_page, requires_chromium
from shared.testing.plugin import eventually
from shared.testing.runs import publish_order_created

pytestmark = [requires_chromium]


async def test_a_replay_clicked_on_the_page_applies_the_event_exactly_once(
    customer_server, customer_api, broker, test_run
):
    missing = random.randint(1_500_000_000, 2_000_000_000)
    event = order_created_event(missing)
    await publish_order_created(broker, test_run.exchange, event)
    [row] = await dead_letter_rows(customer_api, 1, customer_id=str(missing))
    use_app_orm(customer_server.app)  # the fix: the customer exists now
    await Customer.create(id=missing, name="Late", address="Arrived")

    async with chromium_page(str(customer_server.make_url("/ops/console"))) as page:

        async def loaded():
            assert await page.evaluate("document.getElementById('message').textContent") == "loaded"

        await eventually(loaded, timeout=30, interval=0.1)
        rows = await page.evaluate("[...document.querySelectorAll('#letters tbody tr')].map(r => r.textContent)")
        assert any(row["event_id"] in text for text in rows), rows
        groups = await page.evaluate("document.getElementById('groups').textContent")
        assert f"customer {missing} does not exist" in groups

        await page.click(f'tr.letter[data-id="{row["id"]}"]')

        async def shown():
            assert str(missing) in await page.evaluate("document.getElementById('detail-body').textContent")

        await eventually(shown, timeout=10)
        await page.evaluate("document.getElementById('reason').value = 'customer restored'")
        await page.click("#replay")

        async def replayed():
            assert (await page.evaluate("document.getElementById('message').textContent")).startswith("replayed")

        await eventually(replayed, timeout=10)

    async def counted():
        assert (await get_json(customer_api, f"/customers/{missing}"))["orders_count"] == 1

    await eventually(counted, timeout=10)
    marker = await create_customer(customer_api)  # after the replay, in the same queue
    await publish_order_created(broker, test_run.exchange, order_created_event(marker["id"]))

    async def marker_counted():
        assert (await get_json(customer_api, f"/customers/{marker['id']}"))["orders_count"] == 1

    await eventually(marker_counted, timeout=10)
    assert (await get_json(customer_api, f"/customers/{missing}"))["orders_count"] == 1
    detail = await get_json(customer_api, f"/ops/dead-letters/{row['id']}")
    assert detail["state"] == "replayed"
    assert [(a["action"], a["reason"]) for a in changes(detail)] == [("replay", "customer restored")]
