"""Logging configured once per process: one JSON object per line, stamped with the request id.

Lines are written in batches (BatchingStreamHandler): at most FLUSH_INTERVAL late, at once from
WARNING up, and on a normal exit. A write per line (the access log's, one per request) cost a busy
worker a fifth of its requests; a worker killed with SIGKILL loses at most its last FLUSH_INTERVAL
of INFO lines.
"""

import logging
import sys
import threading
from datetime import UTC, datetime

import orjson

from shared.request_id import request_id_var
from shared.tracing import TraceContextFilter

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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


FLUSH_INTERVAL = 0.1  # seconds
MAX_PENDING = 512  # lines: past this many, written at once


class BatchingStreamHandler(logging.StreamHandler):
    """A StreamHandler that formats each record at once but writes the lines in batches."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._flush_every_interval, name="log flusher", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._pending.append(line)
            full = len(self._pending) >= MAX_PENDING
        if full or record.levelno >= logging.WARNING:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                lines, self._pending = self._pending, []
                try:
                    self.stream.write("\n".join(lines) + "\n")
                except Exception:
                    return  # the stream is gone (closed at exit): nothing to write to
            super().flush()

    def close(self) -> None:
        self._stopped.set()
        self.flush()
        super().close()

    def _flush_every_interval(self) -> None:
        while not self._stopped.wait(FLUSH_INTERVAL):
            self.flush()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(TraceContextFilter())  # trace_id and span_id inside a span
    root = logging.getLogger()
    for previous in root.handlers:
        if isinstance(previous, BatchingStreamHandler):
            previous.close()  # writes what it holds and stops its thread
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by ours (shared/observe.py, from the request middleware).
    logging.getLogger("aiohttp.access").disabled = True
    for noisy in ("tortoise", "aiormq", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # aiormq logs every refused reconnect at ERROR; BrokerLink already reports those as warnings.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
