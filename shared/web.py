"""What every service's aiohttp app has: the middleware stack, the ORM, and the operational routes."""

import gc
import time
from collections.abc import Callable, Iterable, Mapping

from aiohttp import web

from shared.admission import ABANDONED, ADMISSION, Admission, admission_ctx, admission_for, client_gone, refused
from shared.auth.access import AUTH, Access
from shared.auth.identity import identity_var
from shared.auth.startup import install_auth
from shared.db import tortoise_ctx, use_app_orm
from shared.health import READINESS, health, readiness, ready
from shared.http import read_body
from shared.metrics import EXPOSITION, exposition, metrics_handler, request_started
from shared.observe import observe
from shared.openapi import add_docs_routes
from shared.problems import problem_for
from shared.recent import Recent
from shared.request_id import HEADER as REQUEST_ID_HEADER
from shared.request_id import accept_request_id, request_id_var
from shared.settings import SharedSettings
from shared.tracing import configure_tracing, instrument_libraries
from shared.tracing_server import server_span_middlewares


@web.middleware
async def request_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Everything a request goes through, in one layer (each layer costs a coroutine and a wrapper per
    request): its body, read before it asks for a slot, so a client that sends one slowly holds a
    socket, not one of the few slots; then admission, so a refusal costs next to nothing
    (shared/admission.py); then the request's id, from the client or made up, in the logs and the
    response; the app's ORM; the caller's token (shared/auth/); any error (a body that did not arrive
    too) as a problem+json; then its metrics and access log line, with the final status."""
    body_failed = await _body_failed(request)
    admission = admission_for(request) if body_failed is None else None
    if admission is not None:
        reason = await admission.admit()
        if reason is not None:
            return refused(request, reason)
        if client_gone(request):  # it left while it waited for its slot
            admission.release()
            ABANDONED.inc()
            return web.Response(status=499)  # nginx's "client closed request": nobody reads it
    started = time.perf_counter()
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    id_token = request_id_var.set(request_id)
    use_app_orm(request.app)
    status = 500
    request_started()
    auth = request.app.get(AUTH)
    try:
        try:
            if auth is not None:  # no or a bad token is a 401 before anything about the body
                await auth.check(request)
            if body_failed is not None:
                raise body_failed
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect is aiohttp's to send
                status = exc.status
                raise
            response = problem_for(request, exc)
        except Exception as exc:
            response = problem_for(request, exc)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        observe(request, status, started)
        identity_var.set(None)
        request_id_var.reset(id_token)
        if admission is not None:
            admission.release()


async def _body_failed(request: web.Request) -> Exception | None:
    """Read the request's body; what went wrong (408, 413, a dropped connection), or None."""
    if not request.can_read_body:
        return None
    try:
        await read_body(request)
    except Exception as exc:
        return exc
    return None


# Python collects its youngest generation each time 700 more container objects were made than freed;
# a request makes a few hundred, so that was a collection every few requests, each walking the young
# objects still alive. Garbage in reference cycles waits a little longer to be freed.
YOUNG_GENERATION_THRESHOLD = 10_000


async def tune_garbage_collection(app: web.Application) -> None:
    """Keep what start-up built (modules, models, schemas, the docs) out of every later garbage collection:
    a full collection otherwise walks all of it, a pause of tens of milliseconds at the p99 of requests.
    And collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


def service_app(
    name: str,
    orm_config: dict,
    routes: Iterable[web.RouteDef],
    openapi_spec: Callable[[str], dict],  # given the token endpoint, for the Authorize button
    settings: SharedSettings,
    access: Mapping[Callable, Access],
    asyncapi_spec: Callable[[], dict],  # the events it publishes or consumes, as `settings` name them
) -> web.Application:
    """The app both services start from; each adds its settings and its own background work after the ORM."""
    # Before any ClientSession exists: the instrumentations patch its class.
    if configure_tracing(name):
        instrument_libraries()
    app = web.Application(middlewares=[*server_span_middlewares(), request_middleware])
    app[ADMISSION] = Admission(
        settings.admission_max_in_flight,
        settings.admission_max_queue,
        settings.admission_queue_timeout,
        settings.admission_max_loop_lag,
        settings.admission_overload_queue_timeout,
        settings.admission_burst,
    )
    app.cleanup_ctx.append(admission_ctx)
    # First: what starts later may use the ORM.
    app.cleanup_ctx.append(tortoise_ctx(orm_config))
    app.on_startup.append(tune_garbage_collection)  # after every cleanup_ctx's start-up, the services' too
    app.add_routes(routes)
    app[READINESS] = Recent(lambda: readiness(app))
    app[EXPOSITION] = Recent(exposition)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_handler)
    add_docs_routes(app, lambda: openapi_spec(settings.token_endpoint), asyncapi_spec)
    install_auth(app, name, settings, access)
    return app
