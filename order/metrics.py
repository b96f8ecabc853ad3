"""Metrics only the order service exports (the shared ones are in shared/metrics.py).

Every series a dashboard or an alert reads exists from start-up, at 0.
"""

from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED
from shared.metrics import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter("events_published_total", "Events the broker confirmed", ["event_type"])
OUTBOX_PENDING = Gauge(
    "outbox_pending_events", "Outbox rows not yet confirmed by the broker", multiprocess_mode="mostrecent"
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "outbox_oldest_pending_seconds", "Age of the oldest unsent outbox row", multiprocess_mode="mostrecent"
)
RELAY_WAITING = Gauge(
    "outbox_relay_waiting",
    "1 while the relay waits for a dependency: broker (down), blocked (an alarm), database",
    ["dependency"],
    multiprocess_mode="max",
)
CUSTOMER_CALL_SECONDS = Histogram(
    "customer_service_call_duration_seconds",
    "Calls from the order service to the customer service",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
CUSTOMER_BREAKER_OPEN = Gauge(
    "customer_service_breaker_open",
    "1 while a worker refuses POST /orders at once because the customer service did not answer",
    multiprocess_mode="max",
)

for _event_type in (ORDER_CREATED, ORDER_STATUS_CHANGED):
    EVENTS_PUBLISHED.labels(_event_type)
for _dependency in ("broker", "blocked", "database"):
    RELAY_WAITING.labels(_dependency).set(0)
CUSTOMER_BREAKER_OPEN.set(0)
