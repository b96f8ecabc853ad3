"""Ours only: how fast the outbox relay publishes and the consumer applies, each alone.

1. Relay: N orders and their outbox rows are committed at once, straight into the order database;
   the time until the outbox is empty gives the relay's events/s (publish with confirms + delete).
2. Consumer: N `order.created` events are published straight to the exchange (confirms pipelined);
   the time until `orders_count` reached N gives the consumer's events/s (apply once + ack).
"""

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import aiormq
import asyncpg
from figure import Figure, dig
from pamqp.commands import Basic
from systems import Ours
from target import Round, create_customer

from shared.amqp import broker_user
from shared.broker_urls import broker_urls
from shared.events import OrderEvent, OrderEventData

POLL = 0.005


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-rates",
        type=int,
        default=20_000,
        help="ours: events for the relay-alone and consumer-alone rates (default 20000; 0 skips)",
    )


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
        # As the order service sends them: the consumer believes an event only with a trusted sender's user_id.
        properties = Basic.Properties(delivery_mode=2, content_type="application/json", user_id=broker_user(channel))
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
    """Both rates on a running system, for a customer of their own: the consumer's after the relay's
    events are all counted."""
    customer_id = await create_customer(http, system.customer_url, 0)
    relay = await relay_rate(system, customer_id, n)

    async def counted() -> bool:
        async with http.get(f"{system.customer_url}/customers/{customer_id}") as response:
            return (await response.json())["orders_count"] == n

    await wait_until(counted)
    consumer = await consumer_rate(system, customer_id, n, n)
    return {"events": n, "relay_events_per_s": relay, "consumer_events_per_s": consumer}


async def run(bench: Round) -> None:
    target = bench.targets.get(Ours.name)
    if not bench.args.event_rates or target is None:
        return
    target.say("the relay and the consumer alone")
    bench.results[target.name]["event_rates"] = await rates(target.system, target.http, bench.args.event_rates)


FIGURES = [
    Figure("relay_eps", "relay alone, events/s", 0, dig("event_rates", "relay_events_per_s")),
    Figure("consumer_eps", "consumer alone, events/s", 0, dig("event_rates", "consumer_events_per_s")),
]
