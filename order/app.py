"""The order service: HTTP API and the outbox relay in one event loop."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
from aiohttp import web

from order.customer_client import CustomerClient
from order.db_config import order_orm_config
from order.keys import CUSTOMERS, ORDER_IDS, RELAY, SETTINGS
from order.openapi import openapi_spec
from order.outbox import OutboxRelay
from order.routes import routes
from order.service import OrderIds
from order.settings import OrderSettings
from shared.amqp import BROKER, BrokerLink, declare_events_exchange
from shared.db import orm_middleware, start_orm_task, tortoise_ctx
from shared.health import READINESS_CHECKS, broker_is_up, database_is_up
from shared.openapi import add_docs_routes
from shared.web import add_common_routes, common_middlewares


async def customer_client_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
        json_serialize=lambda data: orjson.dumps(data).decode(),
    ) as session:
        app[CUSTOMERS] = CustomerClient(session, settings.customer_service_url, settings.customer_service_timeout)
        yield


async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    link = BrokerLink(settings.amqp_url, "outbox relay", lambda channel: declare_events_exchange(channel, settings))
    relay = OutboxRelay(settings, link)
    app[BROKER], app[RELAY] = link, relay
    tasks = [start_orm_task(app, link.run(), name="outbox relay broker link"),
             start_orm_task(app, relay.run(), name="outbox relay")]
    yield
    for task in reversed(tasks):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def create_app(settings: OrderSettings | None = None) -> web.Application:
    app = web.Application(middlewares=[*common_middlewares(), orm_middleware])
    app[SETTINGS] = settings or OrderSettings()
    app[ORDER_IDS] = OrderIds()
    app[READINESS_CHECKS] = {"database": database_is_up, "broker": broker_is_up}
    app.cleanup_ctx.extend([tortoise_ctx(order_orm_config(app[SETTINGS].database_url)), customer_client_ctx, relay_ctx])
    app.add_routes(routes)
    add_common_routes(app)
    add_docs_routes(app, openapi_spec)
    return app
