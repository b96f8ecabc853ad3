"""The outbox rows an order change writes: the message body is fixed at commit time.

Event ids are derived from the order (its id, creation time and the status reached), not random:
an order reaches each status at most once, so re-publishing an order's events later
(`python -m order.ops republish`) yields the same ids, and the consumer's dedupe holds.
"""

import uuid
from dataclasses import dataclass

from shared.auth.identity import current_actor
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, EventType, OrderEvent, OrderEventData
from shared.tracing import inject_text

EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-8d0e-4f55-9a43-2b7f0c1d9e11")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An event to insert into the outbox (order/models.py's OutboxEvent) with its order's change."""

    event_id: uuid.UUID
    event_type: EventType
    order_id: int
    payload: str  # the message body exactly as it is published
    request_id: str
    trace_context: str | None
    actor: str | None = None  # the caller's `sub` (shared/auth/identity.py); the message's x-actor header


def event_id(order, event_type: EventType) -> uuid.UUID:
    # created_at keeps ids apart when an order database is recreated and its ids start again at 1.
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{order.id}:{order.status}:{order.created_at.isoformat()}")


def payload(order, event_type: EventType, event_id: uuid.UUID, previous_status: str | None = None) -> str:
    """The message body: shared.events.OrderEvent, with the order's fields as they are now."""
    event = OrderEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at=order.updated_at,
        data=OrderEventData(
            order_id=order.id,
            customer_id=order.customer_id,
            product_name=order.product_name,
            quantity=order.quantity,
            price=order.price,
            status=order.status,
            previous_status=previous_status,
        ),
    )
    return event.model_dump_json(exclude_none=True)


def outbox_event(order, event_type: EventType, request_id: str, previous_status: str | None = None) -> OutboxRow:
    """`order` is any record with the order's fields: a stored Order, or a new order's row."""
    event = event_id(order, event_type)
    return OutboxRow(
        event_id=event,
        event_type=event_type,
        order_id=order.id,
        payload=payload(order, event_type, event, previous_status),
        request_id=request_id,
        trace_context=inject_text(),
        actor=current_actor(),
    )


def order_created(order, request_id: str) -> OutboxRow:
    return outbox_event(order, ORDER_CREATED, request_id)


def status_changed(order, previous_status: str, request_id: str) -> OutboxRow:
    return outbox_event(order, ORDER_STATUS_CHANGED, request_id, previous_status)
