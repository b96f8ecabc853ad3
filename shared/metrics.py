"""The HTTP metrics both services export, and the `/metrics` handler (each service adds its own).

Under gunicorn with several workers each worker is its own process: with PROMETHEUS_MULTIPROC_DIR set
(by shared/serve.py, run.sh or compose; wiped at start by shared/gunicorn_conf.py) every scrape
aggregates all workers' files instead of showing one worker's numbers.
"""

import os
import time
from bisect import bisect_left
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from shared.process_metrics import ServiceProcessCollector
from shared.recent import Recent

__all__ = ["Counter", "Gauge", "Histogram"]  # every metric of ours is made from these, after the lines below

# With several workers, prometheus_client checks on every update whether the process forked, with
# os.getpid(): a system call, some 25 of them per order. A pid refreshed by a fork hook tells the same.
_pid = os.getpid()


def _remember_pid() -> None:
    global _pid
    _pid = os.getpid()


def _made_before_now() -> set[str]:
    defaults = ("process_", "python_")  # the default collectors' series, which keep no values of their own
    return {family.name for family in REGISTRY.collect() if not family.name.startswith(defaults)}


if values.ValueClass is not values.MutexValue:
    if made := _made_before_now():
        # Their values would write the same per-process files through a second map, and corrupt them.
        raise RuntimeError(f"shared.metrics must be imported before any metric is made: {sorted(made)}")
    os.register_at_fork(after_in_child=_remember_pid)
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: _pid)

# --- per-request metrics, buffered ----------------------------------------------------------------------------
#
# An update of a multiprocess metric takes a lock and packs a value into a memory-mapped file, a large
# part of a small request's cost. The metrics every request updates are therefore tallied in plain
# Python and written in one go when the worker has no request left in progress, or at least every
# FLUSH_INTERVAL (the admission's tick looks too). An idle worker's metrics are exact; a busy one's
# are at most that far behind.

FLUSH_INTERVAL = 1.0  # seconds


class BufferedCounter:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.pending: dict[tuple[str, ...], float] = {}
        _BUFFERED.append(self)

    def inc(self, *labels: str) -> None:
        self.pending[labels] = self.pending.get(labels, 0.0) + 1.0

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for labels, amount in pending.items():
            self.counter.labels(*labels).inc(amount)


class BufferedHistogram:
    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.bounds: Sequence[float] = histogram._upper_bounds  # ends with +Inf
        self.pending: dict[tuple[str, ...], list[float]] = {}  # labels -> [sum, count per bucket...]
        _BUFFERED.append(self)

    def observe(self, value: float, *labels: str) -> None:
        tally = self.pending.get(labels)
        if tally is None:
            tally = self.pending[labels] = [0.0] * (len(self.bounds) + 1)
        tally[0] += value
        tally[1 + bisect_left(self.bounds, value)] += 1  # the first bucket with value <= bound, as observe()

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for labels, (total, *counts) in pending.items():
            child = self.histogram.labels(*labels) if labels else self.histogram
            # What child.observe() updates, once per bucket instead of once per observation.
            child._sum.inc(total)
            for bucket, count in zip(child._buckets, counts, strict=True):
                if count:
                    bucket.inc(count)


_BUFFERED: list[BufferedCounter | BufferedHistogram] = []
_in_progress = 0
_last_flush = 0.0


def flush_buffered() -> None:
    global _last_flush
    _last_flush = time.monotonic()
    for metric in _BUFFERED:
        metric.flush()


def flush_if_due() -> None:
    if time.monotonic() - _last_flush >= FLUSH_INTERVAL:
        flush_buffered()


REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_requests = BufferedCounter(REQUESTS)
_request_seconds = BufferedHistogram(REQUEST_SECONDS)


def route_label(request: web.Request) -> str:
    """The route template, never the raw path: ids and junk URLs must not explode cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def request_started() -> None:
    global _in_progress
    _in_progress += 1


def requests_in_progress() -> int:
    """Requests request_started() announced that observe_request() has not yet ended."""
    return _in_progress


def observe_request(request: web.Request, status: int, started: float) -> float:
    """Count and time a request that request_started() announced; the buffered metrics are written
    when it was the last in progress, or FLUSH_INTERVAL after they last were."""
    global _in_progress
    _in_progress -= 1
    elapsed = time.perf_counter() - started
    route = route_label(request)
    _requests.inc(route, request.method, str(status))
    _request_seconds.observe(elapsed, route, request.method)
    if _in_progress == 0:
        flush_buffered()
    else:
        flush_if_due()
    return elapsed


async def exposition() -> bytes:
    """Every metric in Prometheus' text format; with several workers, all of theirs merged from their files."""
    flush_buffered()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(ServiceProcessCollector())  # what the default registry's process collector would say
    else:
        registry = REGISTRY
    return generate_latest(registry)


# Merging every worker's files costs more than a small request: made at most once a second (shared/recent.py).
EXPOSITION = web.AppKey("exposition", Recent[bytes])


async def metrics_handler(request: web.Request) -> web.Response:
    body = await request.app[EXPOSITION].get()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
