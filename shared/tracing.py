"""OpenTelemetry traces, configured from the standard OTEL_* variables; off (and next to free) without them.

Configured once per process before the app exists (gunicorn forks first, so each worker exports on a
thread of its own). A request gets a SERVER span (continuing a caller's `traceparent`), the order
service's call to the customer service a CLIENT span, each asyncpg statement a span (no parameters).
An outbox row stores the trace context of the request that wrote it, so the relay's PRODUCER span
continues that trace however late the row leaves, and the message carries its `traceparent`; the
consumer's span is a child of the publish span (a link per message for a batch). Log lines written
inside a span get `trace_id` and `span_id` (shared/logs.py). Tests install an in-memory exporter instead
(`install_memory_exporter`).
"""

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import orjson
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from shared.sampling import configured_sampler, dropped_parent

__all__ = [
    "ENV_VARS",
    "TRACER_NAME",
    "SpanKind",
    "activated",
    "configure_tracing",
    "consumer_span",
    "extract_headers",
    "extract_text",
    "inject_headers",
    "inject_text",
    "install_memory_exporter",
    "instrument_libraries",
    "links_from_headers",
    "producer_span",
    "start_span",
    "tracing_on",
    "tracing_requested",
    "uninstrument_libraries",
]

log = logging.getLogger(__name__)
_on = False  # a provider of ours is installed: cheaper to ask than the global provider

TRACER_NAME = "shop-services"
# What decides and shapes tracing here (the SDK reads them from the environment itself).
ENV_VARS = frozenset(
    {
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_PROPAGATORS",
        "OTEL_PYTHON_EXCLUDED_URLS",
        "OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS",
    }
)


def tracing_requested(environ: Mapping[str, str]) -> bool:
    """On only when asked: an OTLP endpoint, or OTEL_TRACES_EXPORTER naming an exporter; never when disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return bool(exporter or (endpoint or "").strip())


def configure_tracing(default_service_name: str) -> bool:
    """Install the process's tracer provider when OTEL_* asks for traces; True if tracing is on.

    Off: nothing is installed, every span is a non-recording no-op and nothing is exported. On: spans
    are batched in memory and sent by a background thread (OTLP over HTTP/protobuf to
    OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, or to stdout with OTEL_TRACES_EXPORTER=console), sampled
    as OTEL_TRACES_SAMPLER says (default: all, following the caller's decision). Safe to call twice.
    """
    global _on
    if not tracing_requested(os.environ):
        return False
    if _on:
        return True  # configured already (a second app in this process)
    provider = TracerProvider(resource=_resource(default_service_name), sampler=configured_sampler())
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)
    _on = True
    log.info("tracing on: %s", provider.resource.attributes.get("service.name"))
    return True


def _resource(default_service_name: str) -> Resource:
    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME over it
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": default_service_name}))
    return resource


def _exporter():
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    if names == ["console"]:
        return ConsoleSpanExporter()
    if names != ["otlp"]:
        raise ValueError(f"OTEL_TRACES_EXPORTER={','.join(names)}: only otlp, console or none are supported")
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise ValueError(f"OTLP protocol {protocol!r}: only http/protobuf is installed (port 4318, not 4317)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # only when on

    return OTLPSpanExporter()


def _instrumentors() -> tuple:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    return (AsyncPGInstrumentor(),)


def instrument_libraries() -> None:
    """Spans from asyncpg, with the official instrumentation (the server's spans come from
    shared/tracing_server.py, which asks the sampler first; the client's from shared/tracing_client.py).

    It patches the library's classes: call it before the database connections are made.
    """
    for instrumentor in _instrumentors():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def uninstrument_libraries() -> None:
    """Undo instrument_libraries (tests: the patches are process-wide)."""
    for instrumentor in _instrumentors():
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def tracing_on() -> bool:
    return _on


_memory_exporter: InMemorySpanExporter | None = None


def install_memory_exporter() -> InMemorySpanExporter:
    """Tests: every span ended from now on, in this process, kept in memory (emptied by each call).

    OpenTelemetry lets a process set its tracer provider once, so the first call installs it and
    later calls reuse it.
    """
    global _memory_exporter, _on
    if _memory_exporter is None:
        if _on or isinstance(trace.get_tracer_provider(), TracerProvider):
            raise RuntimeError("a tracer provider is installed already (OTEL_* set in the test environment?)")
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "tests"}), sampler=configured_sampler())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _memory_exporter, _on = exporter, True
    _memory_exporter.clear()
    return _memory_exporter


_tracer = trace.get_tracer(TRACER_NAME)  # a proxy: it follows the provider installed later


def start_span(name: str, **kwargs: Any) -> AbstractContextManager[trace.Span]:
    """`with start_span("outbox write"):` a span of this project's tracer (kwargs as start_as_current_span).

    With tracing off, not even a no-op span: an untraced request should cost nothing for tracing.
    """
    if not _on:
        return nullcontext(trace.INVALID_SPAN)
    current = trace.get_current_span()
    if current.get_span_context().is_valid and not current.is_recording():
        return nullcontext(current)  # inside a trace that is not sampled: its children would not be either
    return _tracer.start_as_current_span(name, **kwargs)


@contextmanager
def activated(span: trace.Span) -> Iterator[trace.Span]:
    """`span` current until the block ends, then ended. Under a span the sampler dropped, the SQL and HTTP
    client instrumentations are suppressed (their spans would be dropped too); its context still travels
    on (traceparent, sampled flag off), so the services downstream drop it as well."""
    if span.is_recording():
        with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
            yield span
    else:
        with trace.use_span(span), suppress_instrumentation():
            yield span


# --- W3C trace context in AMQP headers and in the outbox row ---------------------------------------------------


def inject_headers(headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `headers` plus the current trace context (`traceparent`, `tracestate`); unchanged with none."""
    carrier = dict(headers or {})
    if _on:
        propagate.inject(carrier)
    return carrier


def extract_headers(headers: Mapping[str, Any] | None) -> Context:
    """The trace context an AMQP message carries (an empty one without); bytes values are read as text."""
    if not _on:
        return Context()
    carrier = {
        str(k).lower(): v.decode(errors="replace") if isinstance(v, bytes) else str(v)
        for k, v in (headers or {}).items()
        if isinstance(v, str | bytes)
    }
    return propagate.extract(carrier)


def links_from_headers(headers_of_messages: Iterable[Mapping[str, Any] | None]) -> list[Link]:
    """Links to the spans that produced each message of a batch (those that carried a trace context)."""
    links = []
    for headers in headers_of_messages:
        context = trace.get_current_span(extract_headers(headers)).get_span_context()
        if context.is_valid:
            links.append(Link(context))
    return links


def producer_span(
    exchange: str, routing_key: str, message_id: str, stored_context: str | None
) -> AbstractContextManager:
    """A PRODUCER span for one publish, in the trace `stored_context` (inject_text's) names: however late the
    message leaves, it joins the trace of the request that wrote it. Nothing is computed with tracing off."""
    if not _on:
        return nullcontext(trace.INVALID_SPAN)
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": routing_key,
        "messaging.message.id": message_id,
    }
    context = extract_text(stored_context)
    return activated(
        dropped_parent(context)
        or _tracer.start_span(f"{exchange} publish", context, kind=SpanKind.PRODUCER, attributes=attributes)
    )


def consumer_span(name: str, headers_of_messages: list[Mapping[str, Any] | None]) -> AbstractContextManager:
    """A CONSUMER span for a batch of messages applied together: for one message, a child of the span that
    published it (one trace from the request to the consumer); for several, linked to each of theirs."""
    if not _on:
        return nullcontext(trace.INVALID_SPAN)
    if len(headers_of_messages) == 1:
        context = extract_headers(headers_of_messages[0])
        return activated(dropped_parent(context) or _tracer.start_span(name, context, kind=SpanKind.CONSUMER))
    return activated(_tracer.start_span(name, kind=SpanKind.CONSUMER, links=links_from_headers(headers_of_messages)))


def inject_text() -> str | None:
    """The current trace context as a short JSON text for the outbox row; None without a trace."""
    if not _on:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return orjson.dumps(carrier).decode() if carrier else None


def extract_text(text: str | None) -> Context:
    """The context inject_text stored (an empty one for None or unreadable text: the span starts a new trace)."""
    if not text:
        return Context()
    try:
        carrier = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Context()
    return extract_headers(carrier if isinstance(carrier, dict) else None)
