"""The customer service: HTTP API and the `order.created` consumer in one event loop."""

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiormq.abc import AbstractChannel

from customer.asyncapi import customer_asyncapi
from customer.db_config import customer_orm_config
from customer.dead_letters.mover import DeadLetterMover
from customer.events.consumer import OrderCreatedConsumer
from customer.housekeeping import run_housekeeping
from customer.keys import CONSUMER, SETTINGS
from customer.openapi import openapi_spec
from customer.routes import access, routes
from customer.settings import CustomerSettings
from shared.amqp import BROKER, BrokerLink
from shared.db import start_orm_task, stop_tasks
from shared.sampling import outside_traces
from shared.web import service_app

DRAIN_TIMEOUT = 10.0

log = logging.getLogger(__name__)


async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    consumer, mover = OrderCreatedConsumer(app[SETTINGS]), DeadLetterMover(app[SETTINGS])

    async def on_channel(channel: AbstractChannel) -> None:
        await consumer.subscription.on_channel(channel)  # declares the queues
        await mover.on_channel(channel)

    link = BrokerLink(app[SETTINGS].amqp_url, "customer.orders consumer", on_channel)
    app[BROKER], app[CONSUMER] = link, consumer
    tasks = [
        start_orm_task(app, link.run(), name="customer.orders broker link"),
        start_orm_task(app, consumer.run(), name="customer.orders consumer"),
        start_orm_task(app, mover.run(), name="customer.orders.dlq mover"),
    ]
    with outside_traces():  # the consumer's statements are traced under its spans; housekeeping's never are
        tasks.append(start_orm_task(app, run_housekeeping(app[SETTINGS]), name="customer housekeeping"))
    yield
    await consumer.drain(DRAIN_TIMEOUT)
    await stop_tasks(tasks)


async def create_app(settings: CustomerSettings | None = None) -> web.Application:
    settings = settings or CustomerSettings()
    orm_config = customer_orm_config(settings.database_url)
    app = service_app(
        "customer", orm_config, routes, openapi_spec, settings, access, lambda: customer_asyncapi(settings)
    )
    app[SETTINGS] = settings
    if settings.auth_mode == "off" and settings.ops_allow_unauthenticated:
        log.warning(
            "OPS_ALLOW_UNAUTHENTICATED=true: anyone who reaches the customer service may replay, edit and "
            "discard dead letters; a developer's machine only"
        )
    app.cleanup_ctx.append(consumer_ctx)
    return app
