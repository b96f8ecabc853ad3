"""Faults against the services running as `make run` runs them, with a TCP proxy in front of a dependency.

The shared PostgreSQL and RabbitMQ are never stopped: the proxy is cut instead.
"""

import asyncio
import os
import signal
import uuid

import aiohttp
import pytest

from shared.testing.plugin import eventually, unique
from shared.testing.processes import gunicorn_workers

pytestmark = pytest.mark.slow


async def new_customer(session, services) -> int:
    body = {"customer": {"name": unique("Fault"), "address": "Here"}}
    for _ in range(10):
        async with session.post(f"{services.customer_url}/customers", json=body) as response:
            answer = await response.json()
            if response.status != 503 or "at capacity" not in answer.get("detail", ""):
                assert response.status == 201, answer
                return answer["id"]
            retry_after = int(response.headers["Retry-After"])
        await asyncio.sleep(retry_after)  # shed for load: what a well-behaved client does
    raise AssertionError("the customer service shed every try")


async def place(session, services, customer_id: int) -> tuple[int, dict]:
    body = {"order": {"customer_id": customer_id, "product_name": "Kettle", "quantity": 1, "price": "25.00"}}
    async with session.post(f"{services.order_url}/orders", json=body) as response:
        return response.status, await response.json()


async def place_politely(session, services, customer_id: int) -> tuple[int, dict]:
    """As a well-behaved client: a request the service shed for load (503, "at capacity", Retry-After) is
    sent again after that wait, with the same Idempotency-Key, so a retry can never place the order twice.
    Any other answer is returned as it is: a fault must not hide behind the retries."""
    body = {"order": {"customer_id": customer_id, "product_name": "Kettle", "quantity": 1, "price": "25.00"}}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(10):
        async with session.post(f"{services.order_url}/orders", json=body, headers=headers) as response:
            answer = await response.json()
            if response.status != 503 or "at capacity" not in answer.get("detail", ""):
                return response.status, answer
            retry_after = int(response.headers["Retry-After"])
        await asyncio.sleep(retry_after)  # what the service asked for
    return 503, {}


async def orders_count(session, services, customer_id: int) -> int:
    async with session.get(f"{services.customer_url}/customers/{customer_id}") as response:
        return (await response.json())["orders_count"]


async def orders_held(session, services, customer_id: int) -> int:
    async with session.get(f"{services.order_url}/orders", params={"customer_id": customer_id}) as response:
        return (await response.json())["total"]


async def assert_counts_exact(session, services, expected: dict[int, int], timeout: float = 30) -> None:
    async def exact():
        for customer_id, count in expected.items():
            assert await orders_count(session, services, customer_id) == count, customer_id

    await eventually(exact, timeout=timeout)


async def test_a_10_second_broker_outage_under_steady_load_loses_and_doubles_nothing(start_services, tcp_proxy):
    broker = await tcp_proxy("127.0.0.1", 5672)
    services = await start_services(AMQP_URL=broker.url("amqp://guest:guest@127.0.0.1:{port}/"))
    async with aiohttp.ClientSession() as session:
        customers = [await new_customer(session, services) for _ in range(3)]
        placed = dict.fromkeys(customers, 0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        phases = [(1.0, broker.cut), (11.0, broker.restore)]  # the broker is away from 1 s to 11 s
        for i in range(240):  # 12 s at a steady 20 orders/s
            while phases and loop.time() - started >= phases[0][0]:
                await phases.pop(0)[1]()
            customer_id = customers[i % len(customers)]
            status, order = await place_politely(session, services, customer_id)
            assert status == 201, order  # the broker's absence never reaches the client
            placed[customer_id] += 1
            await asyncio.sleep(max(0.0, started + (i + 1) / 20 - loop.time()))  # pacing, not synchronisation
        assert not phases
        assert sum(placed.values()) >= 200
        await assert_counts_exact(session, services, placed)


async def test_killing_workers_with_sigkill_mid_load_loses_and_doubles_nothing(start_services):
    services = await start_services()
    async with aiohttp.ClientSession() as session:
        customers = [await new_customer(session, services) for _ in range(4)]
        stop = asyncio.Event()
        answers: list[int] = []

        async def load(worker: int):
            i = worker
            while not stop.is_set():
                try:
                    status, _ = await place(session, services, customers[i % len(customers)])
                    answers.append(status)
                except aiohttp.ClientError:
                    answers.append(0)  # the killed worker's in-flight requests die with it
                i += 1

        clients = [asyncio.create_task(load(n)) for n in range(12)]
        await eventually(lambda: _more_than(answers, 100), timeout=20)
        for name in ("order", "customer"):
            workers = gunicorn_workers(services, name)
            assert workers, f"no {name} workers found"
            for pid in workers:
                os.kill(pid, signal.SIGKILL)  # gunicorn's master starts a new worker
        mark = len(answers)
        await eventually(lambda: _more_than(answers, mark + 100), timeout=30)  # serving again, no restart by hand
        stop.set()
        await asyncio.gather(*clients)

        assert set(answers) <= {0, 201, 503}, set(answers)
        # Whatever was committed is counted exactly once, including orders whose answer was lost.
        held = {c: await orders_held(session, services, c) for c in customers}
        assert sum(held.values()) >= answers.count(201)
        await assert_counts_exact(session, services, held)


async def test_several_workers_and_hundreds_of_concurrent_orders_count_exactly(start_services):
    services = await start_services(WORKERS="2")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        customers = [await new_customer(session, services) for _ in range(3)]
        results = await asyncio.gather(*(place_politely(session, services, customers[i % 3]) for i in range(300)))
        statuses = [status for status, _ in results]
        assert statuses == [201] * 300, {s for s in statuses}
        await assert_counts_exact(session, services, {c: 100 for c in customers})


async def _more_than(items: list, n: int) -> bool:
    return len(items) > n


async def test_a_worker_frozen_for_two_seconds_serves_at_once_when_it_runs_again(start_services):
    """A stall (SIGSTOP/SIGCONT: a long GC pause, a VM steal, a debugger) is one late timer, not overload:
    once /health answers, reads sent one after another are served, not shed for loop lag."""
    services = await start_services(WORKERS="1")  # one worker: every request reaches the frozen one
    async with aiohttp.ClientSession() as session:
        customer_id = await new_customer(session, services)
        [worker] = gunicorn_workers(services, "customer")
        os.kill(worker, signal.SIGSTOP)
        try:
            await asyncio.sleep(2)  # the stall itself, the fault under test
        finally:
            os.kill(worker, signal.SIGCONT)

        async def healthy():
            async with session.get(f"{services.customer_url}/health") as response:
                assert response.status == 200

        await eventually(healthy, timeout=10)
        statuses = []
        for _ in range(20):
            async with session.get(f"{services.customer_url}/customers/{customer_id}") as response:
                await response.read()
                statuses.append(response.status)
        assert statuses == [200] * 20, statuses
