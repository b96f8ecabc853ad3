"""The AsyncAPI 3.0 document of what the order service publishes, from `shared.events.OrderEvent`.

Each message's example is what `order.events` writes into the outbox for a sample order, so the example is the
code's own rendering. `python -m order.asyncapi` prints the document; the service serves it at `/asyncapi.json`.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from order import events
from order.domain import INITIAL_STATUS
from order.settings import OrderSettings
from shared.asyncapi import asyncapi_document, event_message, exchange_channel, operation
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, EventType, OrderEvent

PUBLISHED = (
    "Persistent, published with publisher confirms through the outbox (at least once: a consumer deduplicates "
    "by `event_id`); the AMQP `message_id` is the `event_id`, `type` the event type, `user_id` the publisher's "
    "broker user (the broker checks it). Consumers must ignore unknown fields in `data`."
)


@dataclass(frozen=True)
class _SampleOrder:
    id: int = 7
    customer_id: int = 1
    product_name: str = "Laptop"
    quantity: int = 1
    price: Decimal = Decimal("1200.00")
    status: str = INITIAL_STATUS
    created_at: datetime = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    updated_at: datetime = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def example(event_type: EventType) -> str:
    """The event the outbox writes for a sample order (paid, for a status change)."""
    if event_type == ORDER_CREATED:
        order, previous = _SampleOrder(), None
    else:
        order, previous = _SampleOrder(status="paid", updated_at=datetime(2026, 1, 2, 4, tzinfo=UTC)), INITIAL_STATUS
    return events.payload(order, event_type, events.event_id(order, event_type), previous)


def order_asyncapi(settings: OrderSettings | None = None) -> dict:
    """The document for the exchange `settings` names (by default the contract's, never the environment's)."""
    settings = settings or OrderSettings.model_construct()  # field defaults only: no environment read
    exchange = settings.events_exchange
    return asyncapi_document(
        "Order service events",
        "What the order service publishes to RabbitMQ: every order placed and every lifecycle transition, "
        f"on the durable topic exchange `{exchange}`, with the event type as routing key.",
        settings.amqp_url,
        [OrderEvent],
        channels={
            "orderCreated": exchange_channel(exchange, "topic", ORDER_CREATED, "orderCreated"),
            "orderStatusChanged": exchange_channel(exchange, "topic", ORDER_STATUS_CHANGED, "orderStatusChanged"),
        },
        operations={
            "publishOrderCreated": operation(
                "send",
                "orderCreated",
                "orderCreated",
                "The outbox relay publishes each new order.",
                {"deliveryMode": 2},
            ),
            "publishOrderStatusChanged": operation(
                "send",
                "orderStatusChanged",
                "orderStatusChanged",
                "The outbox relay publishes each lifecycle transition.",
                {"deliveryMode": 2},
            ),
        },
        messages={
            "orderCreated": event_message(
                ORDER_CREATED, OrderEvent, "An order was placed.", PUBLISHED, example(ORDER_CREATED)
            ),
            "orderStatusChanged": event_message(
                ORDER_STATUS_CHANGED,
                OrderEvent,
                "An order moved along its lifecycle; `data.previous_status` is where it came from.",
                PUBLISHED,
                example(ORDER_STATUS_CHANGED),
            ),
        },
    )


if __name__ == "__main__":
    print(json.dumps(order_asyncapi(), indent=2, ensure_ascii=False))
