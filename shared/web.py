"""What every service's aiohttp app has: the middleware stack and the operational routes."""

from aiohttp import web

from shared.health import health, ready
from shared.metrics import metrics_handler
from shared.observe import observe_middleware
from shared.problems import problem_middleware
from shared.request_id import request_id_middleware


def common_middlewares() -> list:
    # Outermost first: the id exists before anything logs; problems are rendered before they are counted.
    return [request_id_middleware, observe_middleware, problem_middleware]


def add_common_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_handler)
