"""One order's trace: from the caller's traceparent through both services, the outbox and a broker outage,
to the consumer that counts it (issue 16; shared/tracing.py)."""

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from conftest import order_client_via
from shared.testing.api import create_customer, get_json
from shared.testing.plugin import eventually
from shared.tracing import install_memory_exporter, instrument_libraries, uninstrument_libraries

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def spans():
    """Tracing on for the apps this test makes (request it before them: the instrumentations patch classes)."""
    exporter = install_memory_exporter()
    instrument_libraries()
    yield exporter
    uninstrument_libraries()


async def test_one_order_is_one_trace_from_the_caller_to_the_consumer_across_a_broker_outage(
    spans, aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    proxy = await tcp_proxy("127.0.0.1", 5672)
    client = await order_client_via(aiohttp_client, test_run, customer_server, proxy)
    customer = await create_customer(customer_api)
    await proxy.cut()  # the event has to wait in the outbox

    body = {"order": {"customer_id": customer["id"], "product_name": "Traced", "quantity": 1, "price": "5.00"}}
    with suppress_instrumentation():  # the test's own client sends the caller's header as it is
        response = await client.post(
            "/orders", json=body, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"}
        )
    assert response.status == 201

    def in_trace():
        return [span for span in spans.get_finished_spans() if format_trace_id(span.context.trace_id) == TRACE_ID]

    async def count_is(n: int) -> None:
        assert (await get_json(customer_api, f"/customers/{customer['id']}"))["orders_count"] == n

    async def waiting_in_the_outbox():
        assert [s for s in in_trace() if s.name == "outbox write"]
        assert not [s for s in in_trace() if s.kind is SpanKind.PRODUCER]

    await eventually(waiting_in_the_outbox)
    await count_is(0)
    await proxy.restore()
    await eventually(lambda: count_is(1), timeout=20)

    async def consumed():
        assert [s for s in in_trace() if s.kind is SpanKind.CONSUMER]

    await eventually(consumed)
    trace = in_trace()
    by_kind = {kind: [s for s in trace if s.kind is kind] for kind in SpanKind}
    post = [
        s
        for s in by_kind[SpanKind.SERVER]
        if s.attributes.get("http.method", s.attributes.get("http.request.method")) == "POST"
    ]
    assert len(post) == 1 and format_span_id(post[0].parent.span_id) == CALLER_SPAN_ID  # the caller's trace
    servers = {s.attributes.get("http.target") or s.attributes.get("url.path") for s in by_kind[SpanKind.SERVER]}
    assert any(str(path).startswith("/customers/") for path in servers)  # the customer service continued it
    assert by_kind[SpanKind.CLIENT]  # the order service's call to the customer service
    assert any(s.attributes.get("db.system") == "postgresql" for s in trace)  # the SQL statements
    producer, consumer = by_kind[SpanKind.PRODUCER], by_kind[SpanKind.CONSUMER]
    # A publish attempt on a channel the outage closed is a span too: the relay tries again in a new one.
    assert producer and {s.name for s in producer} == {f"{test_run.exchange} publish"}
    assert len(consumer) == 1 and consumer[0].parent.span_id in {s.context.span_id for s in producer}
    outbox_write = next(s for s in trace if s.name == "outbox write")
    # It left the outbox after the outage, in the same trace.
    assert all(s.start_time > outbox_write.end_time for s in producer)


async def test_an_unsampled_callers_order_records_no_span_in_either_service_nor_on_the_event_path(
    spans, aiohttp_client, test_run, customer_server, customer_api, tcp_proxy
):
    client = await order_client_via(aiohttp_client, test_run, customer_server, await tcp_proxy("127.0.0.1", 5672))
    customer = await create_customer(customer_api)
    unsampled = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-00"}  # the caller decided: not sampled
    spans.clear()
    body = {"order": {"customer_id": customer["id"], "product_name": "Unsampled", "quantity": 1, "price": "5.00"}}
    with suppress_instrumentation():  # the test's own client sends the caller's header as it is
        response = await client.post("/orders", json=body, headers=unsampled)
    assert response.status == 201

    async def counted():
        with suppress_instrumentation():
            response = await customer_api.get(f"/customers/{customer['id']}", headers=unsampled)
            assert (await response.json())["orders_count"] == 1

    await eventually(counted, timeout=20)
    # The decision travelled with the request, the call to the customer service, the outbox row and the
    # message: no part of the order was sampled anew as a trace of its own.
    assert [span.name for span in spans.get_finished_spans()] == []
