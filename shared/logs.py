"""Logging configured once per process: one JSON object per line, stamped with the request id."""

import asyncio
import logging
import math
import sys
import time

import orjson
from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

from shared.request_id import request_id_var
from shared.tracing import tracing_on

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


_MILLISECONDS = [f".{ms:03d}+00:00" for ms in range(1000)]


class UtcTimestamps:
    """`datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")`, with the date and time
    formatted once per second: every access line carries a timestamp, and isoformat is costly beside the
    rest of a small request."""

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its text): one tuple, so a thread never pairs one's with another's

    def __call__(self, created: float) -> str:
        fraction, whole = math.modf(created)  # split and rounded to the microsecond as datetime does
        micro = round(fraction * 1_000_000)
        second = int(whole) + (micro == 1_000_000)
        cached_second, text = self._cached
        if second != cached_second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, text)
        return text + _MILLISECONDS[micro // 1000 % 1000]


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.timestamp = UtcTimestamps()

    def line(self, created: float, level: str, logger: str, message: str, request_id: str, fields: dict) -> str:
        """The one shape of a log line; `fields` are the structured extras (the access log's, say)."""
        entry = {
            "timestamp": self.timestamp(created),
            "level": level,
            "logger": logger,
            "message": message,
            "request_id": request_id,
            "service": self.service,
            **fields,
        }
        return orjson.dumps(entry, default=str).decode()

    def format(self, record: logging.LogRecord) -> str:
        # Structured fields passed with `extra=`, and the trace ids TraceContextFilter stamped.
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", "-"),
            fields,
        )


HOLD_AT_MOST = 0.02  # seconds an access line may wait in a busy worker to share a write with others


class JsonLineHandler(logging.StreamHandler):
    """The one handler configure_logging installs. Besides records, it takes access lines already
    rendered (log_access) and may hold them for a moment, to write many in one system call; whatever
    it holds goes out before any record it emits, so the lines keep their order."""

    def __init__(self, stream, formatter: JsonFormatter) -> None:
        super().__init__(stream)
        self.json = formatter  # its formatter, typed: log_access renders lines with it
        self.setFormatter(formatter)
        self.held: list[str] = []

    def hold(self, line: str) -> None:
        """Keep `line` until write_held(): called at once, when nothing calls it sooner, after HOLD_AT_MOST."""
        if not self.held:
            asyncio.get_running_loop().call_later(HOLD_AT_MOST, self.write_held)
        self.held.append(line)

    def write_held(self, line: str = "") -> None:
        """Write the lines held, then `line`."""
        held, self.held = self.held, []  # swapped first: a line held meanwhile joins this write
        if held:
            line = "".join(held) + line
        if not line:
            return
        with self.lock:  # type: ignore[union-attr]  # created with the handler
            try:
                self.stream.write(line)
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": "access lines"}))

    def emit(self, record: logging.LogRecord) -> None:
        self.write_held()
        super().emit(record)

    def flush(self) -> None:  # logging.shutdown calls it at exit
        self.write_held()
        super().flush()


def trace_ids() -> dict[str, str]:
    """`trace_id` and `span_id` (hex, as Jaeger shows them) inside a sampled span; nothing outside one, nor
    in a trace the sampler dropped (no backend would know those ids)."""
    if not tracing_on():
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.trace_flags.sampled:
        return {}
    return {"trace_id": format_trace_id(context.trace_id), "span_id": format_span_id(context.span_id)}


class TraceContextFilter(logging.Filter):
    """Stamps the trace ids on records written inside a span."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.update(trace_ids())
        return True


access_log = logging.getLogger("access")
_json_handler: JsonLineHandler | None = None  # the one configure_logging installed


def log_access(message: str, fields: dict, write_now: bool = True) -> None:
    """Write a request's access line (the caller checked that INFO is on).

    Through `logging` a line builds a LogRecord of some 25 attributes and passes two filters, the
    formatter and the handler's lock, a large part of a small request. While the JSON handler that
    configure_logging installed is the only one listening, the same line goes straight to it;
    anything else (a test's capture, a handler an operator added) gets the record.
    Unless `write_now`, the handler holds the line (a busy worker: the lines of many requests go out
    in one write, at most HOLD_AT_MOST later).
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
    trace = trace_ids()
    if trace:
        fields = {**fields, **trace}
    line = handler.json.line(time.time(), "INFO", "access", message, request_id_var.get(), fields)
    if write_now:
        handler.write_held(line + "\n")
    else:
        handler.hold(line + "\n")


def configure_logging(service: str, level: str = "INFO") -> None:
    global _json_handler
    handler = JsonLineHandler(sys.stderr, JsonFormatter(service))
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
