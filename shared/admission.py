"""Admission control: refuse early and cheaply what the service cannot start in time.

Each worker lets `max_in_flight` requests work at once. One more waits for a slot, in arrival order,
at most `queue_timeout` seconds and behind at most `max_queue` others; past either bound it is refused
with a 503 problem and `Retry-After`, before any database, broker or customer-service work. A burst is
welcome to wait its turn; a queue that stands for longer than `burst` (every request waited, window
after window, as CoDel tells a burst from overload) means the offered load is above capacity, and the
wait allowed falls to `overload_queue_timeout` until the queue drains. A request
also waits before it is even parsed when the worker's CPU is saturated: the event loop's lag measures
that wait, and while it stays above `max_loop_lag` (several probes in a row: one late timer after a stall
is no queue) new requests are refused at once. Under a traffic
spike the service so keeps serving what it accepts at full speed, with a bounded wait, instead of
spending itself on requests whose clients have already given up.

The request middleware (shared/web.py) admits a request before anything else, so a refusal costs as
little as it can: no access-log line (the refusals are counted in `http_requests_refused_total`), no
metrics of the request itself.

A request whose client disconnected while it waited is dropped when it gets its slot (counted as
abandoned); handlers check `client_gone` again before their expensive steps. Health, readiness,
metrics and the docs bypass all of it, so they answer under overload.
"""

import asyncio
import contextlib
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import web

from shared.metrics import BufferedCounter, BufferedHistogram, Counter, Gauge, Histogram, flush_if_due
from shared.problems import PROBLEM_CONTENT_TYPE, ServiceUnavailable, problem
from shared.request_id import HEADER as REQUEST_ID_HEADER
from shared.request_id import accept_request_id

RETRY_AFTER_SECONDS = 1
BYPASS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/asyncapi.json", "/docs"})

REFUSED = Counter("http_requests_refused_total", "Requests refused by admission control", ["reason"])
_refused = BufferedCounter(REFUSED)
ABANDONED = Counter("http_requests_abandoned_total", "Admitted requests dropped: the client had gone")
IN_FLIGHT = Gauge(
    "http_requests_in_flight", "Requests holding an admission slot (sampled)", multiprocess_mode="livesum"
)
QUEUE_SECONDS = Histogram(
    "http_request_queue_seconds",
    "Time a request waited for an admission slot",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_queue_seconds = BufferedHistogram(QUEUE_SECONDS)
LOOP_LAG_SECONDS = Gauge(
    "event_loop_lag_seconds", "How late the worker's event loop runs a timer (smoothed)", multiprocess_mode="max"
)
REFUSAL_REASONS = ("queue_full", "queue_timeout", "loop_lag")
for _reason in REFUSAL_REASONS:
    REFUSED.labels(_reason)

LAG_PROBE_INTERVAL = 0.02  # seconds
LAG_SMOOTHING = 0.3  # weight of the newest probe in the exported gauge
# Refuse for lag only when this many probes in a row were late: a saturated CPU makes every timer late,
# a stall (a GC pause, SIGSTOP, a VM steal) only the one that spans it, and nothing is queued after it.
LAG_PERSISTS = 3
WINDOW = 0.1  # seconds over which the shortest wait tells whether the queue stands
STANDING_WAIT = 0.005  # a window whose every request waited at least this long: the queue stands


_ADMISSIONS: "weakref.WeakSet[Admission]" = weakref.WeakSet()  # one per app; tests run several in a process


class Admission:
    """Slots and a first-come-first-served queue of futures. A freed slot passes straight to the oldest
    waiter, and the probe that measures the loop's lag refuses the waiters past their allowed wait every
    LAG_PROBE_INTERVAL: one timer for all of them instead of one per waiter (a semaphore and
    asyncio.timeout would arm and cancel one for every request that waits)."""

    def __init__(
        self,
        max_in_flight: int,
        max_queue: int,
        queue_timeout: float,
        max_loop_lag: float,
        overload_queue_timeout: float,
        burst: float,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.overload_queue_timeout = overload_queue_timeout
        self.burst = burst
        self.max_loop_lag = max_loop_lag
        self.in_flight = 0
        # (arrival, future): the future's result is True when it got a slot, False when it was refused.
        self._waiters: deque[tuple[float, asyncio.Future[bool]]] = deque()
        self.loop_lag = 0.0  # smoothed, for the gauge
        self._recent_lags: deque[float] = deque([0.0] * LAG_PERSISTS, maxlen=LAG_PERSISTS)
        self.lagging = False  # every one of the last LAG_PERSISTS probes ran later than max_loop_lag
        self._window_start = 0.0
        self._window_min = float("inf")
        self._standing_since: float | None = None
        _ADMISSIONS.add(self)

    def _observe_wait(self, wait: float, now: float) -> None:
        if now - self._window_start < WINDOW:
            self._window_min = min(self._window_min, wait)
            return
        if self._window_min == float("inf") or self._window_min < STANDING_WAIT:
            self._standing_since = None
        elif self._standing_since is None:
            self._standing_since = self._window_start
        self._window_start, self._window_min = now, wait

    def _allowed_wait(self, now: float) -> float:
        overloaded = self._standing_since is not None and now - self._standing_since > self.burst
        return self.overload_queue_timeout if overloaded else self.queue_timeout

    def refuse_expired(self, now: float) -> None:
        """Refuse the waiters that have waited longer than now allows (arrival order: the oldest first)."""
        oldest_allowed = now - self._allowed_wait(now)
        waiters = self._waiters
        while waiters and waiters[0][0] <= oldest_allowed:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(False)

    def observe_lag(self, lag: float) -> None:
        self.loop_lag += LAG_SMOOTHING * (lag - self.loop_lag)
        self._recent_lags.append(lag)
        self.lagging = min(self._recent_lags) > self.max_loop_lag

    async def watch_loop_lag(self) -> None:
        """Background task: how late a short timer fires is how long a new request waits to be read.
        The same tick refuses expired waiters, samples the in-flight gauge and writes the buffered metrics
        when they are due (refusals included: they end no request that would)."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            lag = max(0.0, loop.time() - before - LAG_PROBE_INTERVAL)
            self.observe_lag(lag)
            LOOP_LAG_SECONDS.set(self.loop_lag)
            IN_FLIGHT.set(sum(admission.in_flight for admission in _ADMISSIONS))  # the process's, as scraped
            self.refuse_expired(time.monotonic())
            flush_if_due()

    async def admit(self) -> str | None:
        """Take a slot (the wait is observed); or the reason it was refused."""
        if self.lagging:
            return "loop_lag"
        arrived = time.monotonic()
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1  # a free slot: no wait
            self._observe_wait(0.0, arrived)
            _queue_seconds.observe(0.0)
            return None
        if len(self._waiters) >= self.max_queue:
            return "queue_full"
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((arrived, future))
        try:
            admitted = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.release()  # handed a slot just as it was cancelled: pass it on
            raise
        now = time.monotonic()
        self._observe_wait(now - arrived, now)
        if not admitted:
            return "queue_timeout"
        _queue_seconds.observe(now - arrived)
        return None

    def release(self) -> None:
        """The slot goes to the oldest waiter still waiting, or back to the pool."""
        waiters = self._waiters
        while waiters:
            _, future = waiters.popleft()
            if not future.done():  # a waiter cancelled or refused is skipped
                future.set_result(True)
                return
        self.in_flight -= 1


ADMISSION = web.AppKey("admission", Admission)


def client_gone(request: web.Request) -> bool:
    """The client closed its connection: nothing it could still read is worth computing."""
    transport = request.transport
    return transport is None or transport.is_closing()


OVERLOADED = ServiceUnavailable(f"The service is at capacity; retry after {RETRY_AFTER_SECONDS} s.")
# Built once: under overload most answers are this one.
_OVERLOADED_BODY = problem(OVERLOADED.status, OVERLOADED.title, OVERLOADED.detail).body


def overloaded(request: web.Request) -> web.Response:
    return web.Response(
        status=503,
        body=_OVERLOADED_BODY,
        content_type=PROBLEM_CONTENT_TYPE,
        headers={
            "Retry-After": str(RETRY_AFTER_SECONDS),
            REQUEST_ID_HEADER: accept_request_id(request.headers.get(REQUEST_ID_HEADER)),
        },
    )


async def admission_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx entry: the loop-lag probe, a named task cancelled and awaited on shutdown."""
    task = asyncio.create_task(app[ADMISSION].watch_loop_lag(), name="event loop lag probe")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def admission_for(request: web.Request) -> Admission | None:
    """The app's admission, or None for what bypasses it (health, readiness, metrics, the docs)."""
    path = request.path
    if path in BYPASS or path.startswith("/docs/"):
        return None
    return request.app[ADMISSION]


def refused(request: web.Request, reason: str) -> web.Response:
    _refused.inc(reason)
    return overloaded(request)
