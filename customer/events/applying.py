"""Applying a batch of events in one transaction, and counting what it did."""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from customer import service
from customer.events.redelivery import DatabaseUnavailable
from customer.metrics import EVENT_LAG_SECONDS, EVENTS_CONSUMED, EVENTS_DUPLICATE
from shared.db import is_transient_database_error
from shared.events import ORDER_CREATED, OrderEvent
from shared.metrics import BufferedHistogram
from shared.problems import describe

log = logging.getLogger(__name__)
_event_lag = BufferedHistogram(EVENT_LAG_SECONDS)


async def apply_events(events: list[OrderEvent]) -> tuple[dict[UUID, service.Outcome], dict[UUID, Exception]]:
    """Apply the batch in one transaction; if it fails for a reason other than the database being
    away, apply its events one at a time, so one bad event does not hold back the good ones.
    Returns the outcomes and the events that failed on their own; raises DatabaseUnavailable."""
    distinct = list({event.event_id: event for event in events}.values())  # a copy in the batch: once
    if not distinct:
        return {}, {}
    try:
        return await _apply(distinct), {}
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if len(distinct) == 1:
            return {}, {distinct[0].event_id: exc}
    outcomes, failed = {}, {}
    for event in distinct:
        try:
            outcomes.update(await _apply([event]))
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            failed[event.event_id] = exc
    return outcomes, failed


async def _apply(events: list[OrderEvent]) -> dict[UUID, service.Outcome]:
    try:
        return await service.apply_orders_created(events)
    except Exception as exc:
        if is_transient_database_error(exc):
            raise DatabaseUnavailable(describe(exc)) from exc
        raise


def count_outcomes(events: Iterable[OrderEvent], outcomes: dict[UUID, service.Outcome]) -> None:
    counted: set[UUID] = set()
    duplicates = 0
    now = datetime.now(UTC)
    for event in events:
        outcome = outcomes.get(event.event_id)
        if outcome is service.Outcome.APPLIED and event.event_id not in counted:
            counted.add(event.event_id)
            if event.occurred_at.tzinfo is not None:  # a naive timestamp from a foreign producer has no lag
                _event_lag.observe(max(0.0, (now - event.occurred_at).total_seconds()))
        elif outcome is not None and outcome is not service.Outcome.UNKNOWN_CUSTOMER:
            duplicates += 1
    # Once per batch rather than once per event: each update of a multiprocess metric costs a lock
    # and a write into a memory-mapped file.
    _event_lag.flush()
    if duplicates:
        EVENTS_DUPLICATE.labels(ORDER_CREATED).inc(duplicates)
    if counted:
        EVENTS_CONSUMED.labels(ORDER_CREATED).inc(len(counted))
        log.debug("counted %d order(s)", len(counted))
