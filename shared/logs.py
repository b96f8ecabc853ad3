"""Logging configured once per process: one JSON object per line, stamped with the request id."""

import logging
import sys
import time
from datetime import UTC, datetime

import orjson

from shared.request_id import request_id_var
from shared.tracing import TraceContextFilter, trace_ids

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "service": self.service,
        }
        # Structured fields passed with `extra=` (the access log uses them).
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


access_log = logging.getLogger("access")
_json_handler: logging.StreamHandler | None = None  # the one configure_logging installed


def log_access(message: str, fields: dict) -> None:
    """Write a request's access line (the caller checked that INFO is on).

    Through `logging` a line costs about 30 µs of CPU here (a LogRecord of some 25 attributes, two
    filters, the formatter, the handler's lock), a sixth of a GET. While the JSON handler that
    configure_logging installed is the only one listening, the same line goes straight to its stream
    for a tenth of that; anything else (a test's capture, a handler an operator added) gets the record.
    """
    handler = _json_handler
    root_handlers = logging.root.handlers
    if (
        handler is None
        or len(root_handlers) != 1
        or root_handlers[0] is not handler
        or not access_log.propagate
        or access_log.handlers
        or access_log.filters
    ):
        access_log.info(message, extra=fields)
        return
    entry = {
        "timestamp": _timestamp(time.time()),
        "level": "INFO",
        "logger": "access",
        "message": message,
        "request_id": request_id_var.get(),
        "service": handler.formatter.service,  # type: ignore[union-attr]  # our JsonFormatter
        **fields,
        **trace_ids(),
    }
    line = orjson.dumps(entry, default=str).decode() + "\n"
    with handler.lock:  # type: ignore[union-attr]  # created with the handler
        try:
            handler.stream.write(line)
            handler.stream.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": message}))


def configure_logging(service: str, level: str = "INFO") -> None:
    global _json_handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(TraceContextFilter())  # trace_id and span_id inside a span
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _json_handler = handler
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by ours (shared/observe.py, from the request middleware).
    logging.getLogger("aiohttp.access").disabled = True
    for noisy in ("tortoise", "aiormq", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # aiormq logs every refused reconnect at ERROR; BrokerLink already reports those as warnings.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
