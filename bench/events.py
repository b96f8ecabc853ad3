"""Event throughput of our system: how fast the outbox relay publishes and the consumer applies.

    .venv/bin/python bench/events.py [--events N] [--workers W] [--cluster]

1. Relay: N orders and their outbox rows are committed at once, straight into the order database;
   the time until the outbox is empty gives the relay's events/s (publish with confirms + mark sent).
2. Consumer: N `order.created` events are published straight to the exchange (confirms pipelined);
   the time until `orders_count` reached N gives the consumer's events/s (apply once + ack).
Uses the bench's databases, names and ports (bench/systems.py); not part of `make test`.

--cluster: both rates on RabbitMQ nodes of the bench's own (shared/testing/rabbitmq.py): a single node
and a 3-node cluster started the same way (AMQP_URL listing the three; the quorum queue replicated three
ways), measured alternately --rounds times each; prints the medians and the cluster / single-node
ratios. Needs root or the rabbitmq user.
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import aiormq
import asyncpg
from pamqp.commands import Basic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.systems import BenchError, Ours
from shared.broker_urls import broker_urls
from shared.events import OrderEvent, OrderEventData
from shared.testing import rabbitmq

POLL = 0.005
RATES = ("relay_events_per_s", "consumer_events_per_s")
ROUNDS = 3  # --cluster: measurements of each, alternating


def event_body(order_id: int, customer_id: int) -> str:
    return OrderEvent(
        event_id=uuid.uuid4(),
        event_type="order.created",
        occurred_at=datetime.now(UTC),
        data=OrderEventData(
            order_id=order_id, customer_id=customer_id, product_name="Bench", quantity=1, price="1.00", status="created"
        ),
    ).model_dump_json(exclude_none=True)


async def wait_until(check, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the events did not all arrive in time")
        await asyncio.sleep(POLL)
    return time.monotonic()


async def relay_rate(system: Ours, customer_id: int, n: int) -> float:
    orders = await asyncpg.connect(system.database_url(system.databases[1]))
    try:
        async with orders.transaction():
            ids = [
                row[0]
                for row in await orders.fetch(
                    "INSERT INTO orders (customer_id, product_name, quantity, price, status, created_at, updated_at) "
                    "SELECT $1, 'Bench', 1, 1.00, 'created', now(), now() FROM generate_series(1, $2) RETURNING id",
                    customer_id,
                    n,
                )
            ]
            await orders.executemany(
                "INSERT INTO outbox (event_id, event_type, order_id, payload, request_id, created_at, attempts) "
                "VALUES ($1, 'order.created', $2, $3, 'bench', now(), 0)",
                [(uuid.uuid4(), order_id, event_body(order_id, customer_id)) for order_id in ids],
            )
        started = time.monotonic()  # committed: the trigger's NOTIFY wakes the relay now

        async def drained() -> bool:
            return not await orders.fetchval("SELECT count(*) FROM outbox")

        return n / (await wait_until(drained) - started)
    finally:
        await orders.close()


async def consumer_rate(system: Ours, customer_id: int, n: int, already: int) -> float:
    connection = await aiormq.connect(broker_urls(system.amqp_url)[0])
    customers = await asyncpg.connect(system.database_url(system.databases[0]))
    try:
        channel = await connection.channel()
        properties = Basic.Properties(delivery_mode=2, content_type="application/json")
        bodies = [event_body(10_000_000 + i, customer_id).encode() for i in range(n)]
        started = time.monotonic()
        for chunk in range(0, n, 500):
            await asyncio.gather(
                *(
                    channel.basic_publish(
                        body, exchange=system.exchange, routing_key="order.created", properties=properties
                    )
                    for body in bodies[chunk : chunk + 500]
                )
            )

        async def applied() -> bool:
            count = await customers.fetchval("SELECT orders_count FROM customers WHERE id = $1", customer_id)
            return count >= already + n

        return n / (await wait_until(applied) - started)
    finally:
        await customers.close()
        await connection.close()


async def rates(system: Ours, http: aiohttp.ClientSession, n: int) -> dict:
    """Both rates on a running system, for a customer of their own."""
    async with http.post(
        f"{system.customer_url}/customers", json={"customer": {"name": "Bench", "address": "Here"}}
    ) as response:
        customer_id = (await response.json())["id"]
    relay = await relay_rate(system, customer_id, n)

    async def counted() -> bool:
        async with http.get(f"{system.customer_url}/customers/{customer_id}") as response:
            return (await response.json())["orders_count"] == n

    await wait_until(counted)
    consumer = await consumer_rate(system, customer_id, n, n)
    return {"events": n, "relay_events_per_s": relay, "consumer_events_per_s": consumer}


async def measure(workers: int, n: int, amqp_url: str | None = None) -> dict:
    """Start our system (on `amqp_url` if given), measure both rates, stop it."""
    system = Ours(workers)
    if amqp_url:
        system.amqp_url = system.order_amqp_url = amqp_url
    await system.reset()
    async with aiohttp.ClientSession() as http:
        await system.start()
        try:
            await system.wait_ready(http)
            return await rates(system, http, n)
        finally:
            await system.stop()


async def cluster_rates(workers: int, n: int, rounds: int = ROUNDS) -> dict:
    """Both rates on a single node and on a 3-node cluster of our own, alternately, `rounds` times each
    (a busy machine's noise hits both alike); the medians and their ratios."""
    if (why := rabbitmq.available()) is not None:
        raise BenchError(f"cannot start RabbitMQ nodes here: {why}")
    runs: dict[str, list[dict]] = {"single_node": [], "cluster": []}
    with rabbitmq.cluster(1) as single, rabbitmq.cluster(3) as cluster:
        for _ in range(rounds):
            for name, nodes in (("single_node", single), ("cluster", cluster)):
                runs[name].append(await measure(workers, n, nodes.amqp_url))
    result: dict = {"rounds": runs}
    for name, measured in runs.items():
        result[name] = {rate: statistics.median(run[rate] for run in measured) for rate in RATES}
    for rate in RATES:
        result[f"{rate}_ratio"] = result["cluster"][rate] / result["single_node"][rate]
    return result


def show(result: dict) -> None:
    print(f"  outbox relay: {result['relay_events_per_s']:,.0f} events/s (publish with confirms, delete)")
    print(f"  consumer:     {result['consumer_events_per_s']:,.0f} events/s (apply exactly once, ack)")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--cluster", action="store_true", help="on a single node and a 3-node cluster of the bench's own; their ratios"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help=f"--cluster: measurements of each, alternating; medians (default {ROUNDS})",
    )
    args = parser.parse_args()
    print(f"{args.events} events, {args.workers} worker(s) per service")
    if not args.cluster:
        show(await measure(args.workers, args.events))
        return 0
    result = await cluster_rates(args.workers, args.events, args.rounds)
    for name in ("single_node", "cluster"):
        print(
            f"{name.replace('_', ' ')} (median of {args.rounds}; each: "
            + ", ".join(
                f"{run['relay_events_per_s']:,.0f}/{run['consumer_events_per_s']:,.0f}"
                for run in result["rounds"][name]
            )
            + " relay/consumer events/s):"
        )
        show(result[name])
    print(
        f"cluster / single node: relay {result['relay_events_per_s_ratio']:.2f}, "
        f"consumer {result['consumer_events_per_s_ratio']:.2f}"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except BenchError as exc:
        sys.exit(f"bench: {exc}")
