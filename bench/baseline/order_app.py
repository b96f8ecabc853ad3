"""Baseline order service: aiohttp, raw asyncpg and aiormq; no ORM, no outbox, no middleware.

    gunicorn bench.baseline.order_app:create_app --worker-class aiohttp.GunicornUVLoopWebWorker

`POST /orders` does what the real one does on its happy path: validate the customer over HTTP
(one shared ClientSession), insert the order, publish `order.created` as a persistent message
and wait for the broker's confirm, answer 201 with the customer embedded.
"""

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import aiohttp
import aiormq
import orjson
from aiohttp import web
from aiormq.abc import AbstractChannel
from pamqp.commands import Basic

from bench.baseline.common import (
    AMQP_URL,
    EXCHANGE,
    POOL,
    health,
    int_param,
    json_response,
    pool_ctx,
    problem,
    read_object,
    text_field,
)

DATABASE_URL = os.environ.get(
    "BASELINE_ORDER_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_baseline_orders"
)
CUSTOMER_URL = os.environ.get("BASELINE_CUSTOMER_URL", "http://127.0.0.1:3400")
CUSTOMER_TIMEOUT = aiohttp.ClientTimeout(total=2.0)
SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id serial PRIMARY KEY,
    customer_id integer NOT NULL,
    product_name varchar(200) NOT NULL,
    quantity integer NOT NULL,
    price numeric(12, 2) NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'created',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_customer_id ON orders (customer_id)"""
COLUMNS = "id, customer_id, product_name, quantity, price, status, created_at, updated_at"
CENT = Decimal("0.01")
MAX_ID = 2**31 - 1

SESSION = web.AppKey("session", aiohttp.ClientSession)
CHANNEL = web.AppKey("channel", AbstractChannel)


def render(row) -> dict:
    order = dict(row)
    order["price"] = str(row["price"])
    order["total"] = str((row["price"] * row["quantity"]).quantize(CENT))
    return order


def parse_order(data: dict) -> tuple[int, str, int, Decimal] | str:
    """The validated fields, or the name of the first bad one."""
    customer_id, quantity = data.get("customer_id"), data.get("quantity")
    if not isinstance(customer_id, int) or not 0 < customer_id <= MAX_ID:
        return "customer_id"
    product_name = text_field(data, "product_name")
    if product_name is None:
        return "product_name"
    if not isinstance(quantity, int) or not 0 < quantity <= MAX_ID:
        return "quantity"
    try:
        price = Decimal(str(data.get("price")))
    except InvalidOperation:
        return "price"
    if not price.is_finite() or price <= 0 or price != price.quantize(CENT) or price >= 10**10:
        return "price"
    if data.get("status", "created") != "created":
        return "status"
    return customer_id, product_name, quantity, price


async def create_order(request: web.Request) -> web.Response:
    data = await read_object(request, "order")
    parsed = parse_order(data) if data is not None else "order"
    if isinstance(parsed, str):
        return problem(422, "Unprocessable Content", f"{parsed} is missing or invalid", parsed)
    customer_id, product_name, quantity, price = parsed
    try:
        async with request.app[SESSION].get(
            f"{CUSTOMER_URL}/customers/{customer_id}", timeout=CUSTOMER_TIMEOUT
        ) as response:
            if response.status == 404:
                return problem(422, "Unprocessable Content", f"customer {customer_id} does not exist", "customer_id")
            if response.status != 200:
                return problem(503, "Service Unavailable", "the customer service is unavailable")
            customer = await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return problem(503, "Service Unavailable", "the customer service is unavailable")

    row = await request.app[POOL].fetchrow(
        f"INSERT INTO orders (customer_id, product_name, quantity, price) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}",
        customer_id,
        product_name,
        quantity,
        price,
    )
    order = render(row)
    event_id = str(uuid.uuid4())
    event = {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "order.created",
        "occurred_at": datetime.now(UTC),
        "data": {
            "order_id": order["id"],
            "customer_id": customer_id,
            "product_name": product_name,
            "quantity": quantity,
            "price": order["price"],
            "status": order["status"],
        },
    }
    await request.app[CHANNEL].basic_publish(
        orjson.dumps(event),
        exchange=EXCHANGE,
        routing_key="order.created",
        properties=Basic.Properties(content_type="application/json", message_id=event_id, delivery_mode=2),
    )  # returns once the broker confirmed (confirms are on by default in aiormq)
    order["customer"] = {key: customer[key] for key in ("id", "name", "address", "orders_count")}
    return json_response(order, 201, headers={"Location": f"/orders/{order['id']}"})


async def list_orders(request: web.Request) -> web.Response:
    customer_id = int_param(request, "customer_id", 0, 1, MAX_ID)
    limit = int_param(request, "limit", 50, 1, 10**9)
    offset = int_param(request, "offset", 0, 0, 10**9)
    for name, value in (("customer_id", customer_id), ("limit", limit), ("offset", offset)):
        if value is None:
            return problem(422, "Unprocessable Content", f"{name} must be a positive integer", name)
    limit = min(limit, 200)
    where, args = ("WHERE customer_id = $1", [customer_id]) if customer_id else ("", [])
    pool = request.app[POOL]
    total = await pool.fetchval(f"SELECT count(*) FROM orders {where}", *args)
    rows = []
    if offset < total:
        n = len(args)
        rows = await pool.fetch(
            f"SELECT {COLUMNS} FROM orders {where} ORDER BY created_at DESC, id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
            *args,
            limit,
            offset,
        )
    return json_response({"items": [render(row) for row in rows], "total": total, "limit": limit, "offset": offset})


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[SESSION] = session
        yield


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    connection = await aiormq.connect(AMQP_URL)
    channel = await connection.channel()  # publisher confirms on
    await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    app[CHANNEL] = channel
    yield
    await connection.close()


async def create_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.extend([pool_ctx(DATABASE_URL, SCHEMA), session_ctx, broker_ctx])
    app.add_routes(
        [
            web.post("/orders", create_order),
            web.get("/orders", list_orders),
            web.get("/health", health),
        ]
    )
    return app
