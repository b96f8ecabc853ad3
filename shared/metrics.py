"""The HTTP metrics both services export, and the `/metrics` handler (each service adds its own).

Under gunicorn with several workers each worker is its own process: with PROMETHEUS_MULTIPROC_DIR set
(by shared/serve.py, run.sh or compose; wiped at start by shared/gunicorn_conf.py) every scrape
aggregates all workers' files instead of showing one worker's numbers.
"""

import os
import time

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

REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def route_label(request: web.Request) -> str:
    """The route template, never the raw path: ids and junk URLs must not explode cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def observe_request(request: web.Request, status: int, started: float) -> float:
    elapsed = time.perf_counter() - started
    route = route_label(request)
    REQUESTS.labels(route, request.method, str(status)).inc()
    REQUEST_SECONDS.labels(route, request.method).observe(elapsed)
    return elapsed


async def metrics_handler(request: web.Request) -> web.Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
