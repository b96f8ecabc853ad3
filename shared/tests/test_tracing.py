"""shared/tracing.py: off unless asked, spans exported when asked, trace context across AMQP and the outbox."""

import asyncio
import logging
import os
import sys

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from aiormq.abc import DeliveredMessage
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, format_span_id, format_trace_id
from pamqp.commands import Basic

from shared.logs import JsonFormatter, TraceContextFilter
from shared.testing.plugin import eventually, unique
from shared.testing.runs import ROOT, SERVER_URL, aiormq_channel
from shared.tracing import (
    extract_headers,
    extract_text,
    inject_headers,
    inject_text,
    install_memory_exporter,
    instrument_libraries,
    links_from_headers,
    producer_span,
    start_span,
    tracing_requested,
    uninstrument_libraries,
)
from shared.tracing_client import answered, client_span
from shared.tracing_server import server_span_middlewares


@pytest.fixture
def spans():
    return install_memory_exporter()


def ids(span) -> tuple[int, int]:
    context = span.get_span_context()
    return context.trace_id, context.span_id


# --- when tracing is on ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),  # compose passes the variable empty by default
        ({"OTEL_SERVICE_NAME": "order", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_asked_for(environ, on):
    assert tracing_requested(environ) is on


PROBE = """
import threading
from opentelemetry import trace
from shared.tracing import configure_tracing, inject_text, start_span
on = configure_tracing("order")
with start_span("probe") as span:
    print(on, span.is_recording(), inject_text(), type(trace.get_tracer_provider()).__name__, threading.active_count())
if on:
    trace.get_tracer_provider().shutdown()  # flushes the batch
"""


async def run_probe(**otel: str) -> list[str]:
    """PROBE in a fresh interpreter (a process sets its tracer provider once), with only these OTEL_* set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | otel
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return out.decode().split()


@pytest.mark.slow
async def test_without_otel_variables_nothing_is_installed_recorded_or_started():
    on, recording, stored, provider, threads = await run_probe()
    assert (on, recording, stored) == ("False", "False", "None")  # no outbox column value either
    assert provider == "ProxyTracerProvider"
    assert threads == "1"  # no exporter thread


@pytest.fixture
async def otlp_receiver(aiohttp_server):
    """A bare OTLP/HTTP endpoint: the export requests it received, decoded."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), received


def exported(received: list[ExportTraceServiceRequest]) -> dict[str, list[str]]:
    """service.name -> span names, over every export request."""
    out: dict[str, list[str]] = {}
    for request in received:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            names = [span.name for scope in resource_spans.scope_spans for span in scope.spans]
            out.setdefault(attributes["service.name"], []).extend(names)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("otel", "recorded", "sent"),
    [
        ({}, "True", {"order": ["probe"]}),  # the caller's default name
        ({"OTEL_SERVICE_NAME": "order-eu"}, "True", {"order-eu": ["probe"]}),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "False", {}),  # the SDK's own variables apply
    ],
)
async def test_with_an_endpoint_spans_are_sent_over_otlp_http(otlp_receiver, otel, recorded, sent):
    url, received = otlp_receiver
    on, recording, stored, provider, threads = await run_probe(OTEL_EXPORTER_OTLP_ENDPOINT=url, **otel)
    assert (on, recording, provider) == ("True", recorded, "TracerProvider")
    assert orjson.loads(stored)["traceparent"].startswith("00-")  # unsampled, the decision still travels
    assert int(threads) > 1  # the batch exporter's thread
    assert exported(received) == sent


# --- trace context across the broker and the outbox ------------------------------------------------------------


async def test_trace_context_survives_a_round_trip_through_rabbitmq(spans):
    async with aiormq_channel() as channel:
        queue = (await channel.queue_declare(unique("tracing"), exclusive=True, auto_delete=True)).queue
        with start_span("orders publish", kind=SpanKind.PRODUCER) as producer:
            headers = inject_headers({"x-request-id": "r-1"})
        await channel.basic_publish(
            b"{}", routing_key=queue, properties=Basic.Properties(headers=headers, delivery_mode=2)
        )

        async def delivered() -> DeliveredMessage:
            message = await channel.basic_get(queue, no_ack=True)
            assert isinstance(message, DeliveredMessage), "not delivered yet"
            return message

        message = await eventually(delivered)
    received = message.header.properties.headers
    assert received["x-request-id"] == "r-1"  # the headers it had stay
    with start_span("customer.orders process", kind=SpanKind.CONSUMER, context=extract_headers(received)) as consumer:
        pass
    assert consumer.parent.span_id == ids(producer)[1]
    assert ids(consumer)[0] == ids(producer)[0]


def test_outbox_text_carries_the_writers_trace_to_a_later_span(spans):
    with start_span("POST /orders") as post, start_span("outbox write") as write:
        stored = inject_text()
    assert stored is not None and len(stored) < 200  # a small text column
    # ...an hour later, in the relay's loop, with no span of the request around any more:
    with start_span("orders publish", kind=SpanKind.PRODUCER, context=extract_text(stored)) as publish:
        pass
    assert ids(publish)[0] == ids(post)[0]
    assert publish.parent.span_id == ids(write)[1]


def test_under_a_dropped_parent_the_relay_makes_no_span_and_passes_the_decision_on(spans):
    dropped = NonRecordingSpan(SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True))
    with trace.use_span(dropped):  # a request the sampler dropped writes its row
        stored = inject_text()
    with producer_span("orders", "order.created", "event-1", stored) as publish:
        headers = inject_headers()
    assert ids(publish) == ids(dropped)  # the dropped parent stands in: no decision, no ids of its own
    assert headers["traceparent"].endswith("-00")  # the consumer drops it too
    assert not spans.get_finished_spans()


@pytest.mark.parametrize("stored", [None, "", "not json", "[]", '{"traceparent": "garbage"}'])
def test_missing_or_unreadable_stored_context_starts_a_new_trace(spans, stored):
    with start_span("unrelated") as unrelated, start_span("publish", context=extract_text(stored)) as publish:
        pass
    assert publish.parent is None
    assert ids(publish)[0] != ids(unrelated)[0]


def test_a_batch_links_to_every_message_that_carried_a_context(spans):
    carriers = []
    for name in ("first", "second"):
        with start_span(name) as span:
            carriers.append((span, inject_headers({"x-request-id": name})))
    as_bytes = {k: v.encode() for k, v in carriers[1][1].items()}  # a header table may hold byte strings
    links = links_from_headers([carriers[0][1], as_bytes, {"x-request-id": "untraced"}, None])
    assert [(link.context.trace_id, link.context.span_id) for link in links] == [ids(s) for s, _ in carriers]


# --- logs ------------------------------------------------------------------------------------------------------


def log_record() -> logging.LogRecord:
    record = logging.LogRecord("order.service", logging.INFO, __file__, 1, "order placed", None, None)
    TraceContextFilter().filter(record)
    return record


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids(spans):
    with start_span("POST /orders") as span:
        line = orjson.loads(JsonFormatter("order").format(log_record()))
    assert line["trace_id"] == format_trace_id(ids(span)[0]) and len(line["trace_id"]) == 32
    assert line["span_id"] == format_span_id(ids(span)[1]) and len(line["span_id"]) == 16
    assert line["message"] == "order placed"


def test_log_lines_in_a_trace_the_sampler_dropped_have_no_trace_fields(spans):
    unsampled = NonRecordingSpan(SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True))
    with trace.use_span(unsampled):  # no backend would know its ids
        line = orjson.loads(JsonFormatter("order").format(log_record()))
    assert "trace_id" not in line and "span_id" not in line


def test_log_lines_outside_a_span_have_no_trace_fields(spans):
    line = orjson.loads(JsonFormatter("order").format(log_record()))
    assert "trace_id" not in line and "span_id" not in line


# --- the official instrumentations -----------------------------------------------------------------------------


@pytest.fixture
def instrumented(spans):
    instrument_libraries()
    yield spans
    uninstrument_libraries()


async def test_client_server_and_database_spans_form_one_trace(instrumented, aiohttp_server):
    async def lookup(request: web.Request) -> web.Response:
        connection = await asyncpg.connect(SERVER_URL)
        try:
            return web.json_response({"one": await connection.fetchval("SELECT 1")})
        finally:
            await connection.close()

    app = web.Application(middlewares=server_span_middlewares())
    app.router.add_get("/customers/{id}", lookup)
    server = await aiohttp_server(app)
    url = server.make_url("/customers/7")
    with start_span("POST /orders") as caller, client_span("GET", url) as calling:
        async with aiohttp.ClientSession() as session, session.get(url, headers=inject_headers()) as response:
            answered(calling, response.status)
            assert response.status == 200
    finished = instrumented.get_finished_spans()
    [client] = [s for s in finished if s.kind == SpanKind.CLIENT and s.attributes.get("http.request.method") == "GET"]
    assert client.attributes["http.response.status_code"] == 200 and client.attributes["url.full"] == str(url)
    [handler] = [s for s in finished if s.kind == SpanKind.SERVER]
    statements = [s for s in finished if s.attributes.get("db.system") == "postgresql"]
    assert client.parent.span_id == ids(caller)[1]
    assert handler.parent.span_id == ids(client)[1]  # the server continued the client's traceparent
    assert any(
        s.parent.span_id == ids(handler)[1] and "SELECT 1" in s.attributes.get("db.statement", "") for s in statements
    )
    assert {ids(s)[0] for s in (client, handler, *statements)} == {ids(caller)[0]}
