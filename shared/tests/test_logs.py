"""shared/logs.py: the access line written straight to the JSON stream is the line `logging` would write."""

import io
import logging
import sys
from datetime import UTC, datetime

import orjson
import pytest

from shared.logs import JsonLineHandler, UtcTimestamps, access_log, configure_logging, log_access
from shared.request_id import request_id_var
from shared.testing.plugin import eventually
from shared.tracing import install_memory_exporter, start_span

FIELDS = {"method": "GET", "path": "/customers/7", "status": 200, "duration_ms": 1.25, "remote": "127.0.0.1"}
TOUCHED = ("", "aiohttp.access", "tortoise", "aiormq", "aiormq.connection", "asyncio")


@pytest.fixture
def json_log(monkeypatch):
    """The services' logging set-up, writing to a string; every logger it changes is put back after."""
    saved = [
        (logging.getLogger(name), logging.getLogger(name).level, logging.getLogger(name).disabled) for name in TOUCHED
    ]
    saved_handlers = logging.root.handlers[:]
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("customer", "INFO")
    token = request_id_var.set("rid-logs")
    yield stream
    request_id_var.reset(token)
    logging.root.handlers[:] = saved_handlers
    for logger, level, disabled in saved:
        logger.setLevel(level)
        logger.disabled = disabled


def only_ours() -> None:
    """Leave the JSON handler alone at the root, as in a service: pytest adds its capture for each test phase."""
    logging.root.handlers[:] = [h for h in logging.root.handlers if isinstance(h, JsonLineHandler)]


def lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_the_direct_access_line_is_the_line_logging_writes(json_log):
    only_ours()
    log_access("GET /customers/7 200", FIELDS)
    access_log.info("GET /customers/7 200", extra=FIELDS)  # through logging: its record, filters and formatter
    direct, through_logging = lines(json_log)
    assert direct.pop("timestamp")[:10] == through_logging.pop("timestamp")[:10]
    assert direct == through_logging
    assert direct["request_id"] == "rid-logs" and direct["service"] == "customer" and direct["logger"] == "access"


def test_the_direct_access_line_carries_the_trace_ids(json_log):
    only_ours()
    install_memory_exporter()
    with start_span("GET /customers/{id}"):
        log_access("GET /customers/7 200", FIELDS)
        access_log.info("GET /customers/7 200", extra=FIELDS)
    direct, through_logging = lines(json_log)
    assert len(direct["trace_id"]) == 32 and len(direct["span_id"]) == 16
    assert (direct["trace_id"], direct["span_id"]) == (through_logging["trace_id"], through_logging["span_id"])


def test_another_handler_gets_the_access_record(json_log):
    records: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = records.append  # type: ignore[method-assign]
    logging.root.addHandler(collector)
    log_access("GET /customers/7 200", FIELDS)
    assert [(r.name, r.getMessage(), r.status) for r in records] == [("access", "GET /customers/7 200", 200)]
    assert lines(json_log)[0]["path"] == "/customers/7"  # the JSON line is written all the same


async def test_held_access_lines_go_out_in_order_before_the_next_record_or_after_a_moment(json_log):
    only_ours()
    log_access("GET /customers/1 200", FIELDS, write_now=False)
    log_access("GET /customers/2 200", FIELDS, write_now=False)
    assert json_log.getvalue() == ""  # held: a busy worker's lines share one write
    logging.getLogger("shared.amqp").warning("broker gone")
    assert [line["message"] for line in lines(json_log)] == [
        "GET /customers/1 200",
        "GET /customers/2 200",
        "broker gone",
    ]

    log_access("GET /customers/3 200", FIELDS, write_now=False)
    await eventually(lambda: _written(json_log, "GET /customers/3 200"))
    log_access("GET /customers/4 200", FIELDS, write_now=False)
    log_access("GET /customers/5 200", FIELDS)  # the last request in progress writes what is held, then its own
    assert [line["message"] for line in lines(json_log)][-2:] == ["GET /customers/4 200", "GET /customers/5 200"]


async def _written(stream: io.StringIO, message: str) -> None:
    assert message in [line["message"] for line in lines(stream)]


def test_timestamps_are_those_datetime_writes_across_seconds_and_their_rounding():
    timestamps = UtcTimestamps()
    second = 1_764_806_399  # 2025-12-03T23:59:59Z: the next second is another day
    for created in [
        second + 0.0,
        second + 0.0004,
        second + 0.0005,
        second + 0.123456,
        second + 0.9994999,
        second + 0.9999994,  # rounds to ...59.999999: still this second
        second + 0.9999996,  # rounds to the next second, as datetime rounds it
        second + 1.0,
        second + 1.5839994,
        second - 86_400.25,  # another second than the one cached: its text must not be reused
        second + 0.001,
    ]:
        assert timestamps(created) == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"), created
