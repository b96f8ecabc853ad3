"""`/health` (the process answers) and `/ready` (its database and broker are reachable).

`/ready` checks at most once a second (shared/recent.py): a flood of probes costs one query a second."""

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.amqp import BROKER
from shared.auth.access import AUTH
from shared.db import ORM
from shared.http import json_response
from shared.problems import problem
from shared.recent import Recent

ReadinessCheck = Callable[[web.Application], Awaitable[str]]
READINESS = web.AppKey("readiness", Recent[dict[str, str]])
CHECK_TIMEOUT = 1.0
UP = "up"


async def database_state(app: web.Application) -> str:
    await app[ORM].db().execute_query("SELECT 1")
    return UP


async def broker_state(app: web.Application) -> str:
    link = app[BROKER]
    if not link.is_up:
        return "unavailable"
    return "blocked (a memory or disk alarm)" if link.is_blocked else UP


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _state(check: ReadinessCheck, app: web.Application) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check(app)
    except Exception:
        return "unavailable"


async def readiness(app: web.Application) -> dict[str, str]:
    """The state of each dependency, by name."""
    checks = {"database": database_state, "broker": broker_state}  # every service has both
    return dict(zip(checks, await asyncio.gather(*(_state(c, app) for c in checks.values())), strict=True))


async def ready(request: web.Request) -> web.Response:
    states = await request.app[READINESS].get()
    down = {name: state for name, state in states.items() if state != UP}
    if down:
        errors = [{"field": name, "message": state} for name, state in down.items()]
        detail = "; ".join(f"{name} {state}" for name, state in down.items())
        return problem(503, "Service Unavailable", f"Not ready: {detail}.", errors)
    body: dict = {"status": "ready", "checks": states}
    if AUTH not in request.app:
        body["auth"] = "off"  # said where probes and dashboards look: this service checks no token
    return json_response(body)
