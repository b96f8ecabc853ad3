"""After the last fault is healed: wait (bounded) for the system to settle, then check the invariants.

Settled: both services ready, the outbox empty, every queue but the checker's own drained, every
customer's orders_count equal to the orders the order database holds for it. Then, from the book of
answers, the databases and the status events the run's tap queue kept:

- every order that got a 201 exists exactly once, and every 201 of it (retries with its key) carried
  the same id;
- no order whose request got a 4xx exists;
- an order answered only 503 or nothing exists at most once; a keyed one that exists was returned by a
  retry with its key;
- every order is counted exactly once in its customer's orders_count;
- every status change applied (200, or found applied after a lost answer) was published, deduplicated
  by event id exactly once, in its order's sequence, and nothing else was;
- nothing dead-lettered or waiting in a retry queue; no idempotency key left claimed.
"""

import asyncio
import time
from collections import Counter, defaultdict

import aiohttp
import orjson

from chaos.load import Book
from chaos.system import STATUS_TAP, System, drain_status_tap

SETTLE_TIMEOUT = 60.0


async def ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/ready", timeout=aiohttp.ClientTimeout(total=3)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def counts(system: System) -> tuple[dict[int, int], dict[int, int]]:
    """(orders held per customer in the order database, orders_count per customer)."""
    held = await system.query("order", "SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id")
    counted = await system.query("customer", "SELECT id, orders_count FROM customers")
    return {r["customer_id"]: r["n"] for r in held}, {r["id"]: r["orders_count"] for r in counted if r["orders_count"]}


async def unsettled(system: System, http: aiohttp.ClientSession) -> list[str]:
    """What is not yet as it must end; [] once settled."""
    why = []
    for name, url in (("customer", system.services.customer_url), ("order", system.services.order_url)):
        if not await ready(http, url):
            why.append(f"{name} service not ready")
    try:
        outbox = (await system.query("order", "SELECT count(*) AS n FROM outbox"))[0]["n"]
        if outbox:
            why.append(f"{outbox} event(s) still in the outbox")
        held, counted = await counts(system)
        if held != counted:
            differ = {customer for customer in set(held) | set(counted) if held.get(customer) != counted.get(customer)}
            why.append(f"orders_count differs from the orders held for {len(differ)} customer(s)")
    except Exception as exc:
        why.append(f"a database does not answer: {type(exc).__name__}: {exc}")
    try:
        for queue, (ready_n, unacked) in (await system.queues()).items():
            if queue != STATUS_TAP and ready_n + unacked:
                why.append(f"queue {queue} holds {ready_n} ready, {unacked} unacknowledged")
    except Exception as exc:
        why.append(f"the broker does not answer: {exc}"[:200])
    return why


async def settle(system: System, timeout: float = SETTLE_TIMEOUT) -> tuple[float, list[str]]:
    """Seconds it took to settle, and what was still unsettled at the deadline ([] if it settled)."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while True:
            why = await unsettled(system, http)
            if not why or time.monotonic() - started > timeout:
                return time.monotonic() - started, why
            await asyncio.sleep(1.0)


def check_orders(book: Book, rows: dict[str, list[int]]) -> list[str]:
    violations = []
    for order in book.orders:
        found, answers = rows.get(order.token, []), ",".join(map(str, order.statuses))
        what = f"order {order.token} ({'keyed' if order.key else 'no key'}; answers {answers})"
        if 201 in order.statuses:
            if len(order.ids) != 1:
                violations.append(f"{what}: its 201s carried different ids {sorted(order.ids)}")
            if found != sorted(order.ids):
                violations.append(f"{what}: got 201 with id {sorted(order.ids)} but the database holds {found}")
        elif order.statuses and 400 <= order.statuses[-1] < 500 and order.statuses[-1] != 409:
            if found:
                violations.append(f"{what}: answered {order.statuses[-1]} but exists as {found}")
        elif len(found) > 1:
            violations.append(f"{what}: exists {len(found)} times {found}")
        elif found and order.key:
            violations.append(f"{what}: exists as {found} but no retry with its key returned it")
    return violations


def applied_changes(messages: list) -> dict[int, list[tuple[str, str]]]:
    """The status changes the tap received, deduplicated by event id, per order in arrival order."""
    seen: set[str] = set()
    changes: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for message in messages:
        event = orjson.loads(message.body)
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        data = event["data"]
        changes[data["order_id"]].append((data["previous_status"], data["status"]))
    return changes


async def check_status_changes(system: System, book: Book) -> list[str]:
    expected = {order_id: list(changes) for order_id, changes in book.transitions.items()}
    if book.unsure:
        rows = await system.query("order", "SELECT id, status FROM orders WHERE id = ANY($1)", list(book.unsure))
        for row in rows:
            current, new = book.unsure[row["id"]]
            if row["status"] == new:
                expected.setdefault(row["id"], []).append((current, new))
            elif row["status"] != current:
                return [
                    f"order {row['id']}: status {row['status']!r} after a change {current}->{new} whose answer was lost"
                ]
    observed = applied_changes(await drain_status_tap(system.node.url))
    violations = []
    for order_id in sorted(set(expected) | set(observed)):
        made, applied = expected.get(order_id, []), observed.get(order_id, [])
        if made != applied:
            violations.append(f"order {order_id}: status changes made {made}, events applied {applied}")
    return violations


async def check(system: System, book: Book) -> list[str]:
    """Every violation, named; [] when the run lost, doubled and left nothing half-done."""
    rows: dict[str, list[int]] = defaultdict(list)
    for row in await system.query("order", "SELECT id, product_name FROM orders ORDER BY id"):
        rows[row["product_name"].removeprefix("chaos-")].append(row["id"])
    violations = check_orders(book, rows)
    held, counted = await counts(system)
    for customer_id in sorted(set(held) | set(counted)):
        n_held, n_counted = held.get(customer_id, 0), counted.get(customer_id, 0)
        if n_held != n_counted:
            violations.append(f"customer {customer_id}: {n_held} orders held, orders_count {n_counted}")
    violations += await check_status_changes(system, book)
    claimed = await system.query("order", "SELECT key FROM idempotency_keys WHERE status_code IS NULL")
    answers = {order.key: order.statuses for order in book.orders if order.key}
    for row in claimed[:10]:
        key = row["key"].rsplit("\x1f", 1)[-1]
        violations.append(f"idempotency key {key} left claimed; its client was answered {answers.get(key)}")
    leased = await system.query("order", "SELECT count(*) AS n FROM outbox WHERE leased_until IS NOT NULL")
    if leased[0]["n"]:
        violations.append(f"{leased[0]['n']} outbox lease(s) left")
    queues = await system.queues()
    for queue, (ready_n, unacked) in sorted(queues.items()):
        if queue != STATUS_TAP and ready_n + unacked:
            kind = "dead-lettered" if queue.endswith(".dlq") else "not drained"
            violations.append(f"queue {queue}: {ready_n + unacked} message(s) {kind}")
    duplicates = Counter(order.token for order in book.orders)
    violations += [f"token {token} used twice by the load itself" for token, n in duplicates.items() if n > 1]
    return violations
