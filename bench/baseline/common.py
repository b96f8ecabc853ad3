"""What both baseline apps share: settings from the environment, JSON in and out, a raw asyncpg pool."""

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import orjson
from aiohttp import web

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
EXCHANGE = os.environ.get("BASELINE_EXCHANGE", "bench.baseline.orders")
QUEUE = os.environ.get("BASELINE_QUEUE", "bench.baseline.customer.orders")
POOL_MAX = int(os.environ.get("BASELINE_POOL_MAX", "10"))
PREFETCH = 32  # the real customer service's default CONSUMER_PREFETCH

POOL = web.AppKey("pool", asyncpg.Pool)

# Any constant works; it only has to be the same in every worker that creates the tables.
SCHEMA_LOCK = 0x62656E6368


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, default=str), status=status, headers=headers, content_type="application/json"
    )


def problem(status: int, title: str, detail: str, field: str | None = None) -> web.Response:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [{"field": field, "message": detail}] if field else [],
    }
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/problem+json")


async def read_object(request: web.Request, envelope: str) -> dict | None:
    """The body's `{envelope: {...}}` object, or None when the body is not that shape."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    inner = body.get(envelope) if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else None


def text_field(data: dict, name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 200 and "\0" not in value else None


def int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


def pool_ctx(dsn: str, schema: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx entry: a pool, with the tables created once (workers take turns on an advisory lock)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=POOL_MAX)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(schema)
        app[POOL] = pool
        yield
        await pool.close()

    return ctx


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})
