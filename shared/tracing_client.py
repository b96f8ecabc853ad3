"""The CLIENT span of a call to another service, made only inside a sampled trace.

In place of opentelemetry-instrumentation-aiohttp-client, whose trace configuration has aiohttp fire its
tracing signals on every request of the session, sampled or not: an unsampled request costs a look at
the current span here. Its trace context still travels (shared.tracing.inject_headers), so the service
called follows the decision.
"""

from contextlib import AbstractContextManager, nullcontext

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from yarl import URL

from shared.tracing import TRACER_NAME, tracing_on

_tracer = trace.get_tracer(TRACER_NAME)


def client_span(method: str, url: URL) -> AbstractContextManager[trace.Span]:
    """`with client_span("GET", url) as span:` around the call; inject the headers inside it (its context
    is the one passed on) and give the answer's status to `answered`. An exception leaving the block
    marks the span as failed."""
    if not tracing_on() or not trace.get_current_span().is_recording():
        return nullcontext(trace.INVALID_SPAN)
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.full": str(url),
        "server.address": url.host or "",
        "server.port": url.port or 0,  # yarl gives the scheme's port when the URL has none
    }
    return _tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes)


def answered(span: trace.Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
