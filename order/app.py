"""The order service: HTTP API and the outbox relay in one event loop."""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from order.asyncapi import order_asyncapi
from order.customer_client import CircuitBreaker, CustomerClient
from order.db_config import order_orm_config
from order.housekeeping import run_housekeeping
from order.keys import CUSTOMERS, ORDER_IDS, OUTBOX, SETTINGS
from order.openapi import openapi_spec
from order.outbox import Outbox
from order.repository import OrderIds
from order.routes import access, routes
from order.settings import OrderSettings
from shared.amqp import BROKER, BrokerLink, declare_events_exchange
from shared.auth.service_token import ServiceToken
from shared.auth.startup import warn_about_plain_http
from shared.db import start_orm_task, stop_tasks
from shared.sampling import outside_traces
from shared.scopes import CUSTOMERS_READ
from shared.web import service_app


async def customer_client_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30)) as session:
        breaker = CircuitBreaker(settings.customer_breaker_failures, settings.customer_breaker_cooldown)
        token = service_token(session, settings)
        app[CUSTOMERS] = CustomerClient(
            session, settings.customer_service_url, settings.customer_service_timeout, breaker, token
        )
        if token is None:
            yield
            return
        warn_about_plain_http("AUTH_TOKEN_URL", settings.auth_token_url)
        renewal = asyncio.create_task(token.run(), name="order service token")
        yield
        await stop_tasks([renewal])


def service_token(session: aiohttp.ClientSession, settings: OrderSettings) -> ServiceToken | None:
    """The order service's own token for the customer service (AUTH_MODE=jwt)."""
    if settings.auth_mode == "off":
        return None
    assert settings.auth_token_url and settings.client_id and settings.client_secret  # refuse_unconfigured
    secret = settings.client_secret.get_secret_value()
    return ServiceToken(session, settings.auth_token_url, settings.client_id, secret, CUSTOMERS_READ)


async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    link = BrokerLink(settings.amqp_url, "outbox relay", lambda channel: declare_events_exchange(channel, settings))
    outbox = Outbox(settings, link)
    app[BROKER], app[OUTBOX] = link, outbox
    with outside_traces():
        tasks = [
            start_orm_task(app, link.run(), name="outbox relay broker link"),
            start_orm_task(app, outbox.relay.run(), name="outbox relay"),
            start_orm_task(app, outbox.session.hold(), name="outbox relay session"),
            start_orm_task(app, run_housekeeping(settings), name="order housekeeping"),
        ]
    yield
    await stop_tasks(tasks)


async def create_app(settings: OrderSettings | None = None) -> web.Application:
    settings = settings or OrderSettings()
    orm_config = order_orm_config(settings.database_url)
    app = service_app("order", orm_config, routes, openapi_spec, settings, access, lambda: order_asyncapi(settings))
    app[SETTINGS] = settings
    app[ORDER_IDS] = OrderIds()
    app.cleanup_ctx.extend([customer_client_ctx, relay_ctx])
    return app
