"""Both services on a 3-node RabbitMQ cluster of the suite's own, under steady order load, while the
node that leads `customer.orders` is killed (kill -9), and then the next leader is stopped gracefully.

Each time: a new leader is elected, the consumers and the relays come back by themselves on the
surviving nodes (the same worker processes: no restart), the queue has all its consumers again (none
silently lost), an order placed after the fault is counted, and the node restarts and rejoins. At the
end every accepted order is counted exactly once and the outbox is empty.
"""

import asyncio
import contextlib
import uuid

import aiohttp
import asyncpg
import pytest

from shared.db import asyncpg_dsn
from shared.testing import rabbitmq
from shared.testing.plugin import eventually
from shared.testing.processes import Services, gunicorn_workers

pytestmark = [pytest.mark.slow, pytest.mark.skipif(rabbitmq.available() is not None, reason=str(rabbitmq.available()))]

WORKERS = 2  # per service: as many consumers on the queue, and as many relays
CLIENTS = 4  # the steady load: each posts an order, pauses PACE s, and again
PACE = 0.1
RECOVERY = 90.0  # seconds for an election, the reconnects and the backlog; rabbitmqctl alone takes ~1 s


@pytest.fixture
def cluster():
    with rabbitmq.cluster(3) as nodes:
        yield nodes


class Load:
    """Clients placing orders for the given customers until stopped; what each answer was."""

    def __init__(self, session: aiohttp.ClientSession, order_url: str, customer_ids: list[int]) -> None:
        self.session, self.url, self.customer_ids = session, f"{order_url}/orders", customer_ids
        self.accepted: list[int] = []
        self.other: list[str] = []
        self.refused = 0  # 503s, each retried
        self._stop = asyncio.Event()

    async def place(self, customer_id: int) -> int | None:
        """One order, retried with the same Idempotency-Key on a 503 (nothing stored: try again later),
        after its Retry-After or a second. (A busy machine: three nodes, rabbitmqctl runs, the services.)"""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        body = {"order": {"customer_id": customer_id, "product_name": "Kettle", "quantity": 1, "price": "25.00"}}
        for _ in range(20):
            async with self.session.post(self.url, json=body, headers=headers) as response:
                if response.status == 201:
                    order_id = (await response.json())["id"]
                    self.accepted.append(order_id)
                    return order_id
                if response.status != 503:
                    self.other.append(f"{response.status}: {await response.text()}")
                    return None
                self.refused += 1
                wait = int(response.headers.get("Retry-After", "1"))
            await asyncio.sleep(wait)  # what the service asked for
        self.other.append("503 twenty times")
        return None

    async def client(self, n: int) -> None:
        while not self._stop.is_set():
            await self.place(self.customer_ids[n % len(self.customer_ids)])
            n += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PACE):  # a steady pace, not a synchronisation
                    await self._stop.wait()

    async def run(self) -> None:
        await asyncio.gather(*(self.client(n) for n in range(CLIENTS)))

    def stop(self) -> None:
        self._stop.set()


async def test_both_services_ride_out_the_loss_of_the_queue_leader_node(cluster, scratch_run, tmp_path):
    run = scratch_run()
    services = Services(
        env={
            "AMQP_URL": cluster.amqp_url,
            "WORKERS": str(WORKERS),
            "CUSTOMER_DATABASE_URL": run.customer_db,
            "ORDER_DATABASE_URL": run.order_db,
            "EVENTS_EXCHANGE": run.exchange,
            "CUSTOMER_ORDERS_QUEUE": run.queue,
        },
        log_path=tmp_path / "services.log",
    )
    customers_db = await asyncpg.connect(asyncpg_dsn(run.customer_db))
    orders_db = await asyncpg.connect(asyncpg_dsn(run.order_db))
    load_task = None
    try:
        await services.start(timeout=60)
        workers = {name: set(gunicorn_workers(services, name)) for name in ("customer", "order")}
        async with aiohttp.ClientSession() as session:
            customer_ids = []
            for n in range(5):  # four under load, one for the probes
                async with session.post(
                    f"{services.customer_url}/customers", json={"customer": {"name": f"Cluster {n}", "address": "Here"}}
                ) as response:
                    assert response.status == 201, await response.text()
                    customer_ids.append((await response.json())["id"])
            loaded, probe = customer_ids[:4], customer_ids[4]
            load = Load(session, services.order_url, loaded)
            load_task = asyncio.create_task(load.run(), name="order load")

            async def queue() -> dict:
                found = await asyncio.to_thread(cluster.queue, run.queue)
                assert found is not None, f"{run.queue} not on the cluster"
                return found

            async def all_consumers(not_led_by: str | None = None) -> dict:
                found = await queue()
                assert found["leader"] != not_led_by, f"still led by {not_led_by}"
                assert found["consumers"] == WORKERS, f"{found['consumers']} consumer(s), not {WORKERS}: {found}"
                return found

            async def probe_counted(expected: int) -> None:
                """An order placed now reaches the customer's count: a relay and a consumer work."""
                assert await load.place(probe) is not None, load.other

                async def counted():
                    count = await customers_db.fetchval("SELECT orders_count FROM customers WHERE id = $1", probe)
                    assert count == expected, f"probe customer at {count}, not {expected}"

                await eventually(counted, timeout=RECOVERY, interval=0.1)

            async def rejoined(node: rabbitmq.Node) -> None:
                async def back():
                    assert node.name in await asyncio.to_thread(cluster.running_nodes), f"{node.name} not running"
                    assert node.name in (await queue())["online"], f"{node.name} not a member online again"

                await eventually(back, timeout=RECOVERY, interval=1.0)

            first = await eventually(all_consumers, timeout=RECOVERY, interval=1.0)
            await probe_counted(1)
            # Every queue of the customer service survives a node: none lives on one node only.
            ours = [q for q in await asyncio.to_thread(cluster.queues) if q["name"].startswith(run.queue)]
            assert len(ours) == 2 + len(run.retry_delays), ours  # the work queue, its dead letters, the retries
            lonely = [q["name"] for q in ours if q["type"] != "quorum" or len(q["members"]) != len(cluster.nodes)]
            assert not lonely, f"not replicated to every node: {lonely}"

            # 1. kill -9 of the leader's node.
            killed = cluster.node(first["leader"])
            await asyncio.to_thread(killed.kill)
            second = await eventually(lambda: all_consumers(not_led_by=killed.name), timeout=RECOVERY, interval=1.0)
            await probe_counted(2)
            await asyncio.to_thread(killed.launch)
            await asyncio.to_thread(killed.wait_up)
            await rejoined(killed)

            # 2. A graceful stop of the new leader's node.
            stopped = cluster.node(second["leader"])
            await asyncio.to_thread(stopped.stop)
            await eventually(lambda: all_consumers(not_led_by=stopped.name), timeout=RECOVERY, interval=1.0)
            await probe_counted(3)
            await asyncio.to_thread(stopped.launch)
            await asyncio.to_thread(stopped.wait_up)
            await rejoined(stopped)

            load.stop()
            await load_task
            assert not load.other, f"orders refused: {load.other[:5]}"
            assert len(load.accepted) > 50, f"only {len(load.accepted)} orders accepted: the load was not steady"

            async def exact():
                stored = dict(
                    await orders_db.fetch(
                        "SELECT customer_id, count(*) FROM orders WHERE customer_id = ANY($1::int[]) GROUP BY 1",
                        customer_ids,
                    )
                )
                counts = dict(
                    await customers_db.fetch(
                        "SELECT id, orders_count FROM customers WHERE id = ANY($1::int[])", customer_ids
                    )
                )
                assert counts == stored, f"counted {counts}, stored {stored}"
                assert not await orders_db.fetchval("SELECT count(*) FROM outbox"), "events still in the outbox"

            await eventually(exact, timeout=RECOVERY, interval=0.2)
            await all_consumers()  # still all of them, long after the faults (none counted only in passing)
            placed = {row[0] for row in await orders_db.fetch("SELECT id FROM orders")}
            assert set(load.accepted) <= placed
            assert len(placed) == len(load.accepted), "an order stored that no client was told of"
            await services.wait_ready()
            assert {name: set(gunicorn_workers(services, name)) for name in workers} == workers, (
                "a worker was restarted"
            )
    except BaseException:
        print(services.log_tail(80))
        raise
    finally:
        if load_task is not None and not load_task.done():
            load_task.cancel()
            await asyncio.gather(load_task, return_exceptions=True)
        await services.stop()
        await customers_db.close()
        await orders_db.close()
