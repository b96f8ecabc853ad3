"""Metrics only the customer service exports (the shared ones are in shared/metrics.py).

Every series a dashboard or an alert reads exists from start-up, at 0, and every label comes from a
small fixed set.
"""

from shared.events import ORDER_CREATED
from shared.metrics import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("events_consumed_total", "Events applied by the consumer", ["event_type"])
EVENTS_DUPLICATE = Counter("events_duplicate_total", "Redelivered events already applied", ["event_type"])
DEAD_LETTER_REASONS = (
    "untrusted_sender",
    "invalid_event",
    "unexpected_event_type",
    "unknown_customer",
    "stale_event",
    "retries_exhausted",
    "delivery_limit",  # by the broker; counted when the dead letter is moved into the table
)
EVENTS_DEAD_LETTERED = Counter("events_dead_lettered_total", "Events sent to the dead-letter queue", ["reason"])
RETRY_CAUSES = ("database_unavailable", "failed")
EVENTS_RETRIED = Counter(
    "events_retried_total",
    "Events set aside for later: requeued while the database is unavailable, or delayed after a failure",
    ["cause"],
)
EVENT_LAG_SECONDS = Histogram(
    "event_lag_seconds",
    "From the event's occurred_at (the order's commit) to its count being committed",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_BATCH_SIZE = Histogram(
    "consumer_batch_size",
    "Deliveries the consumer took and settled together",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
CONSUMER_BREAKER_OPEN = Gauge(
    "consumer_breaker_open", "1 while the consumer is paused for its database", multiprocess_mode="max"
)
CONSUMER_BREAKER_OPEN_SECONDS = Gauge(
    "consumer_breaker_open_seconds", "How long the breaker has been open", multiprocess_mode="max"
)

for _event_type in (ORDER_CREATED,):
    EVENTS_CONSUMED.labels(_event_type)
    EVENTS_DUPLICATE.labels(_event_type)
for _reason in DEAD_LETTER_REASONS:
    EVENTS_DEAD_LETTERED.labels(_reason)
for _cause in RETRY_CAUSES:
    EVENTS_RETRIED.labels(_cause)
CONSUMER_BREAKER_OPEN.set(0)
CONSUMER_BREAKER_OPEN_SECONDS.set(0)
