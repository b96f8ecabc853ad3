"""What every service's aiohttp app has: the middleware stack, the ORM, and the operational routes."""

from collections.abc import Callable, Iterable

from aiohttp import web

from shared.admission import ADMISSION, Admission, admission_ctx, admission_middleware
from shared.db import orm_middleware, tortoise_ctx
from shared.health import health, ready
from shared.metrics import metrics_handler
from shared.observe import observe_middleware
from shared.openapi import add_docs_routes
from shared.problems import problem_middleware
from shared.request_id import request_id_middleware
from shared.settings import SharedSettings
from shared.tracing import configure_tracing, instrument_libraries


def service_app(
    name: str,
    orm_config: dict,
    routes: Iterable[web.RouteDef],
    openapi_spec: Callable[[], dict],
    settings: SharedSettings,
) -> web.Application:
    """The app both services start from; each adds its settings and its own background work after the ORM."""
    # Before the Application and any ClientSession exist: the instrumentations patch their classes.
    if configure_tracing(name):
        instrument_libraries()
    # Outermost first: a refusal costs next to nothing; the id exists before anything logs; problems are
    # rendered before they are counted.
    app = web.Application(
        middlewares=[
            admission_middleware,
            request_id_middleware,
            observe_middleware,
            problem_middleware,
            orm_middleware,
        ]
    )
    app[ADMISSION] = Admission(
        settings.admission_max_in_flight,
        settings.admission_max_queue,
        settings.admission_queue_timeout,
        settings.admission_max_loop_lag,
        settings.admission_overload_queue_timeout,
        settings.admission_burst,
    )
    app.cleanup_ctx.append(admission_ctx)
    app.cleanup_ctx.append(tortoise_ctx(orm_config))  # first: what starts later may use the ORM
    app.add_routes(routes)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_handler)
    add_docs_routes(app, openapi_spec)
    return app
