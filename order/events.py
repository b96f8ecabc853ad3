"""The outbox rows an order change writes: the message body is fixed at commit time."""

import uuid

from order.models import Order, OutboxEvent
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent, OrderEventData


def outbox_event(order: Order, event_type: str, request_id: str, previous_status: str | None = None) -> OutboxEvent:
    event = OrderEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        occurred_at=order.updated_at,
        data=OrderEventData(
            order_id=order.id, customer_id=order.customer_id, product_name=order.product_name,
            quantity=order.quantity, price=order.price, status=order.status, previous_status=previous_status,
        ),
    )
    return OutboxEvent(
        event_id=event.event_id, event_type=event_type, order_id=order.id, request_id=request_id,
        payload=event.model_dump_json(exclude_none=True),
    )


def order_created(order: Order, request_id: str) -> OutboxEvent:
    return outbox_event(order, ORDER_CREATED, request_id)


def status_changed(order: Order, previous_status: str, request_id: str) -> OutboxEvent:
    return outbox_event(order, ORDER_STATUS_CHANGED, request_id, previous_status)
