"""Metrics only the order service exports (the shared ones are in shared/metrics.py)."""

from prometheus_client import Gauge

RELAY_WAITING = Gauge(
    "outbox_relay_waiting", "1 while the relay waits for a dependency: broker (down), blocked (an alarm), database",
    ["dependency"], multiprocess_mode="max",
)
for _dependency in ("broker", "blocked", "database"):
    RELAY_WAITING.labels(_dependency).set(0)  # every series exists from start-up
