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
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

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
