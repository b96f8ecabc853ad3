"""The AsyncAPI 3.0 document of what the customer service consumes, from `shared.events.OrderEvent`.

Generated rather than hand-written so the document cannot drift from the model the producer and the consumer
use (shared/asyncapi.py). `python -m customer.asyncapi` prints it; the service serves it at `/asyncapi.json`.
"""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from customer.settings import CustomerSettings
from shared import asyncapi
from shared.asyncapi import event_message, operation, queue_channel
from shared.events import ORDER_CREATED, OrderEvent, OrderEventData
from shared.request_id import REQUEST_ID_AMQP_HEADER as REQUEST_ID

EXAMPLE = OrderEvent(
    event_id=uuid.UUID("0b5e7f3c-2d1a-5e4b-9c8d-7f6e5d4c3b2a"),
    event_type=ORDER_CREATED,
    occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    data=OrderEventData(
        order_id=7, customer_id=1, product_name="Laptop", quantity=1, price=Decimal("1200.00"), status="created"
    ),
)
CONSUMED = (
    "The order service's event, as it publishes it. Applied exactly once: the `event_id` is recorded in the "
    "transaction that counts the order, so a redelivery changes nothing. The customer service believes only "
    "messages whose AMQP `user_id` is one of ORDER_EVENTS_PUBLISHERS; it reads only the fields it needs."
)


def _dead_letter_message() -> dict:
    return {
        "name": "dead_letter",
        "title": "Dead-lettered order event",
        "summary": "An event the customer service could not apply, with the reason.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                REQUEST_ID: {"type": "string", "description": "The request that caused the event."},
                "x-dead-letter-reason": {"type": "string", "description": "Why it can never be applied."},
                "x-dead-letter-kind": {"type": "string", "description": "The reason's label, as in the metrics."},
                "x-original-routing-key": {"type": "string", "description": "The routing key it came with."},
                "x-death": {"type": "array", "description": "Set by the broker past the delivery limit."},
            },
        },
        "payload": {
            "description": "The original body, unchanged: possibly not JSON or not an OrderEvent at all.",
        },
    }


def _retry_message() -> dict:
    return {
        "name": "retry",
        "title": "Order event waiting for a retry",
        "summary": "A copy of an event whose last attempt failed while the database was up.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                REQUEST_ID: {"type": "string", "description": "The request that caused the event."},
                "x-retry-attempt": {"type": "integer", "description": "Failed attempts so far."},
                "x-last-error": {"type": "string", "description": "What the last attempt raised."},
            },
        },
        "payload": {"$ref": "#/components/schemas/OrderEvent"},
    }


def _channels(settings: CustomerSettings) -> dict:
    retries = len(settings.retry_delays)
    return {
        "customerOrders": queue_channel(
            settings.orders_queue,
            f"Quorum queue bound to `{ORDER_CREATED}` on the topic exchange `{settings.events_exchange}`, "
            f"delivery limit {settings.delivery_limit}, dead-lettering to `{settings.dead_letter_exchange}`.",
            "orderCreated",
        ),
        "customerOrdersDeadLetter": queue_channel(
            settings.dead_letter_queue,
            f"Quorum queue bound to the fanout exchange `{settings.dead_letter_exchange}`.",
            "deadLetter",
        ),
        **{
            f"customerOrdersRetry{delay}s": queue_channel(
                settings.retry_queue(delay),
                f"Quorum queue bound to the direct exchange `{settings.retry_exchange}` under its own name, "
                f"message TTL {delay} s; an expired message is dead-lettered (at least once) through "
                f"`{settings.retry_exchange}` with routing key `{settings.orders_queue}`, "
                f"back into the work queue. Retry {n} of {retries}.",
                "retry",
            )
            for n, delay in enumerate(settings.retry_delays, 1)
        },
    }


def _operations(settings: CustomerSettings) -> dict:
    return {
        "consumeOrderCreated": operation(
            "receive",
            "customerOrders",
            "orderCreated",
            "The customer service counts the order for its customer, then acks.",
            {"ack": True},
        ),
        "deadLetterOrderEvent": operation(
            "send",
            "customerOrdersDeadLetter",
            "deadLetter",
            "The customer service sets aside a message it can never apply (not JSON, wrong schema, "
            "unknown customer, older than the deduplication window), or one whose retries ran out.",
            {"deliveryMode": 2},
        ),
        **{
            f"retryOrderEvent{delay}s": operation(
                "send",
                f"customerOrdersRetry{delay}s",
                "retry",
                f"The customer service sets aside, for {delay} s, a message that failed while its database was "
                "up; the broker returns it to the work queue.",
                {"deliveryMode": 2},
            )
            for delay in settings.retry_delays
        },
    }


def customer_asyncapi(settings: CustomerSettings | None = None) -> dict:
    """The document for the topology `settings` names (by default the contract's, never the environment's)."""
    settings = settings or CustomerSettings.model_construct()  # field defaults only: no environment read
    return asyncapi.asyncapi_document(
        "Customer service events",
        "What the customer service consumes from RabbitMQ: `order.created`, from its own quorum queue, to count "
        "each customer's orders. Every event is applied exactly once; what can never be applied is dead-lettered.",
        settings.amqp_url,
        [OrderEvent],
        channels=_channels(settings),
        operations=_operations(settings),
        messages={
            "orderCreated": event_message(
                ORDER_CREATED, OrderEvent, "An order was placed.", CONSUMED, EXAMPLE.model_dump_json(exclude_none=True)
            ),
            "deadLetter": _dead_letter_message(),
            "retry": _retry_message(),
        },
    )


if __name__ == "__main__":
    print(json.dumps(customer_asyncapi(), indent=2, ensure_ascii=False))
