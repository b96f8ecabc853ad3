"""The SERVER span of each request, with the sampling decision taken first.

In place of opentelemetry-instrumentation-aiohttp-server, whose middleware builds a dozen attributes,
parses the URL and records two metrics for every request before the sampler has a say: with
`parentbased_traceidratio` at 10 %, nine requests in ten paid that for nothing. Here a request the
sampler drops costs its decision and the context it passes on (shared.tracing.activated); one it keeps
gets the HTTP semantic-convention attributes.
"""

from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import get_excluded_urls

from shared.metrics import route_label
from shared.sampling import dropped_parent
from shared.tracing import TRACER_NAME, activated, tracing_on

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def server_span_middlewares() -> list:
    """[the middleware] while tracing is on (put it first: its span covers the others), [] while off.

    Paths matching OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS (or OTEL_PYTHON_EXCLUDED_URLS) get no span."""
    if not tracing_on():
        return []
    tracer = trace.get_tracer(TRACER_NAME)
    excluded = get_excluded_urls("AIOHTTP_SERVER")

    @web.middleware
    async def server_span(request: web.Request, handler: Handler) -> web.StreamResponse:
        if excluded is not None and excluded.url_disabled(request.path):
            return await handler(request)
        route = route_label(request)
        context = propagate.extract(request.headers)
        span = dropped_parent(context) or tracer.start_span(
            f"{request.method} {route}", context=context, kind=SpanKind.SERVER
        )
        with activated(span):
            if not span.is_recording():
                return await handler(request)
            span.set_attributes(
                {
                    "http.request.method": request.method,
                    "http.route": route,
                    "url.path": request.path,
                    "url.scheme": request.scheme,
                    "server.address": request.host,
                    "user_agent.original": request.headers.get("User-Agent", ""),
                }
            )
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                _set_status(span, exc.status)
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR))
                raise
            _set_status(span, response.status)
            return response

    return [server_span]


def _set_status(span: trace.Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:  # a 4xx is the client's error, not the server span's (semantic conventions)
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
