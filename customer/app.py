"""The customer service: HTTP API and the `order.created` consumer in one event loop."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from customer.consumer import OrderCreatedConsumer
from customer.db_config import customer_orm_config
from customer.keys import CONSUMER, SETTINGS
from customer.openapi import openapi_spec
from customer.routes import routes
from customer.settings import CustomerSettings
from shared.amqp import BROKER, BrokerLink
from shared.db import orm_middleware, start_orm_task, tortoise_ctx
from shared.health import READINESS_CHECKS, broker_is_up, database_is_up
from shared.openapi import add_docs_routes
from shared.web import add_common_routes, common_middlewares

DRAIN_TIMEOUT = 10.0


async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    consumer = OrderCreatedConsumer(app[SETTINGS])
    link = BrokerLink(app[SETTINGS].amqp_url, "customer.orders consumer", consumer.on_channel)
    app[CONSUMER], app[BROKER] = consumer, link
    task = start_orm_task(app, link.run(), name="customer.orders consumer")
    yield
    await consumer.drain(DRAIN_TIMEOUT)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def create_app(settings: CustomerSettings | None = None) -> web.Application:
    app = web.Application(middlewares=[*common_middlewares(), orm_middleware])
    app[SETTINGS] = settings or CustomerSettings()
    app[READINESS_CHECKS] = {"database": database_is_up, "broker": broker_is_up}
    app.cleanup_ctx.extend([tortoise_ctx(customer_orm_config(app[SETTINGS].database_url)), consumer_ctx])
    app.add_routes(routes)
    add_common_routes(app)
    add_docs_routes(app, openapi_spec)
    return app
