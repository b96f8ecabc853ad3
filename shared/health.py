"""`/health` (the process answers) and `/ready` (its database and broker are reachable)."""

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.amqp import BROKER
from shared.db import ORM
from shared.http import json_response
from shared.problems import problem

ReadinessCheck = Callable[[web.Application], Awaitable[bool]]
CHECK_TIMEOUT = 1.0


async def database_is_up(app: web.Application) -> bool:
    await app[ORM].db().execute_query("SELECT 1")
    return True


async def broker_is_up(app: web.Application) -> bool:
    return app[BROKER].is_up


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _passes(check: ReadinessCheck, app: web.Application) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check(app)
    except Exception:
        return False


async def ready(request: web.Request) -> web.Response:
    checks = {"database": database_is_up, "broker": broker_is_up}  # every service has both
    results = await asyncio.gather(*(_passes(check, request.app) for check in checks.values()))
    down = [name for name, ok in zip(checks, results, strict=True) if not ok]
    if down:
        errors = [{"field": name, "message": "unavailable"} for name in down]
        return problem(503, "Service Unavailable", f"Not ready: {', '.join(down)} unavailable.", errors)
    return json_response({"status": "ready", "checks": {name: "up" for name in checks}})
