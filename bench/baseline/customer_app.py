"""Baseline customer service: aiohttp, raw asyncpg and aiormq; no ORM, no middleware.

    gunicorn bench.baseline.customer_app:create_app --worker-class aiohttp.GunicornUVLoopWebWorker

The `order.created` consumer runs in the same event loop, as in the real service:
increment `orders_count`, set `updated_at`, ack.
"""

import logging
import os
from collections.abc import AsyncIterator

import aiormq
import asyncpg
import orjson
from aiohttp import web
from aiormq.abc import DeliveredMessage

from bench.baseline.common import (
    AMQP_URL,
    EXCHANGE,
    POOL,
    PREFETCH,
    QUEUE,
    health,
    json_response,
    pool_ctx,
    problem,
    read_object,
    text_field,
)

log = logging.getLogger(__name__)

DATABASE_URL = os.environ.get(
    "BASELINE_CUSTOMER_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_baseline_customers"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id serial PRIMARY KEY,
    name varchar(200) NOT NULL,
    address varchar(200) NOT NULL,
    email varchar(254) UNIQUE,
    orders_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)"""
COLUMNS = "id, name, address, email, orders_count, created_at, updated_at"
MAX_ID = 2**31 - 1


async def create_customer(request: web.Request) -> web.Response:
    data = await read_object(request, "customer")
    if data is None:
        return problem(422, "Unprocessable Content", 'send {"customer": {...}}', "customer")
    name, address, email = text_field(data, "name"), text_field(data, "address"), data.get("email")
    if name is None or address is None or not (email is None or (isinstance(email, str) and "@" in email)):
        return problem(422, "Unprocessable Content", "name, address and email are required", "customer")
    try:
        row = await request.app[POOL].fetchrow(
            f"INSERT INTO customers (name, address, email) VALUES ($1, $2, $3) RETURNING {COLUMNS}",
            name,
            address,
            email,
        )
    except asyncpg.UniqueViolationError:
        return problem(409, "Conflict", f"the email {email} is taken", "email")
    return json_response(dict(row), 201, headers={"Location": f"/customers/{row['id']}"})


async def get_customer(request: web.Request) -> web.Response:
    customer_id = int(request.match_info["id"])
    row = None
    if customer_id <= MAX_ID:
        row = await request.app[POOL].fetchrow(f"SELECT {COLUMNS} FROM customers WHERE id = $1", customer_id)
    if row is None:
        return problem(404, "Not Found", f"Customer {customer_id} does not exist.")
    return json_response(dict(row))


async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = app[POOL]

    async def on_message(message: DeliveredMessage) -> None:
        try:
            event = orjson.loads(message.body)
            await pool.execute(
                "UPDATE customers SET orders_count = orders_count + 1, updated_at = now() WHERE id = $1",
                int(event["data"]["customer_id"]),
            )
        except Exception:
            log.exception("cannot apply message %s; dropping it", message.header.properties.message_id)
            await message.channel.basic_reject(message.delivery_tag, requeue=False)
            return
        await message.channel.basic_ack(message.delivery_tag)

    connection = await aiormq.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    # The same queue type as the real service, so the ratio measures the code rather than the broker.
    await channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    await channel.queue_bind(QUEUE, EXCHANGE, routing_key="order.created")
    await channel.basic_qos(prefetch_count=PREFETCH)
    await channel.basic_consume(QUEUE, on_message, no_ack=False)
    yield
    await connection.close()  # unacked messages go back to the queue


async def create_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.extend([pool_ctx(DATABASE_URL, SCHEMA), consumer_ctx])
    app.add_routes(
        [
            web.post("/customers", create_customer),
            web.get(r"/customers/{id:\d+}", get_customer),
            web.get("/health", health),
        ]
    )
    return app
