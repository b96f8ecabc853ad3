"""The AsyncAPI 3.0 document of the order events, generated from `shared.events.OrderEvent`.

Generated rather than hand-written so the document cannot drift from the model the producer and the consumer
use. `python -m customer.asyncapi > infra/asyncapi.json` writes the committed copy; a test keeps it current.
"""

import json
from importlib.metadata import version
from urllib.parse import urlsplit

from pydantic.json_schema import models_json_schema

from customer.settings import CustomerSettings
from shared.broker_urls import broker_urls
from shared.events import ORDER_CREATED, ORDER_STATUS_CHANGED, OrderEvent
from shared.request_id import REQUEST_ID_AMQP_HEADER as REQUEST_ID

BINDING_VERSION = "0.3.0"


def _event_message(event_type: str, summary: str) -> dict:
    return {
        "name": event_type,
        "title": event_type,
        "summary": summary,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                REQUEST_ID: {"type": "string", "description": "The HTTP request that caused the event."},
                "traceparent": {
                    "type": "string",
                    "description": "W3C trace context of the publish (with tracing on; `tracestate` may follow).",
                },
            },
        },
        "correlationId": {"location": f"$message.header#/{REQUEST_ID}"},
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/OrderEvent"},
                {"properties": {"event_type": {"const": event_type}}},
            ],
        },
        "bindings": {"amqp": {"messageType": event_type, "bindingVersion": BINDING_VERSION}},
        "description": "Persistent, published with publisher confirms; the AMQP `message_id` is the `event_id`, "
        "the AMQP `user_id` the publisher's broker user (the broker checks it; the customer service believes "
        "only ORDER_EVENTS_PUBLISHERS). Consumers must ignore unknown fields in `data`.",
    }


def _dead_letter_message() -> dict:
    return {
        "name": "dead_letter",
        "title": "Dead-lettered order event",
        "summary": "An event the customer service could not apply, with the reason.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                REQUEST_ID: {"type": "string"},
                "x-dead-letter-reason": {"type": "string", "description": "Why it can never be applied."},
                "x-dead-letter-kind": {"type": "string", "description": "The reason's label, as in the metrics."},
                "x-original-routing-key": {"type": "string"},
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
                REQUEST_ID: {"type": "string"},
                "x-retry-attempt": {"type": "integer", "description": "Failed attempts so far."},
                "x-last-error": {"type": "string", "description": "What the last attempt raised."},
            },
        },
        "payload": {"$ref": "#/components/schemas/OrderEvent"},
    }


def _exchange_channel(settings: CustomerSettings, routing_key: str, message: str) -> dict:
    return {
        "address": routing_key,
        "title": f"{settings.events_exchange} / {routing_key}",
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {"name": settings.events_exchange, "type": "topic", "durable": True, "autoDelete": False},
                "bindingVersion": BINDING_VERSION,
            }
        },
    }


def _queue_channel(name: str, description: str, message: str) -> dict:
    return {
        "address": name,
        "description": description,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {"name": name, "durable": True, "exclusive": False, "autoDelete": False},
                "bindingVersion": BINDING_VERSION,
            }
        },
    }


def _operation(action: str, channel: str, message: str, summary: str, binding: dict) -> dict:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "summary": summary,
        "bindings": {"amqp": {**binding, "bindingVersion": BINDING_VERSION}},
    }


def asyncapi_document(settings: CustomerSettings | None = None) -> dict:
    """The document for the topology `settings` names (by default the contract's, never the environment's)."""
    settings = settings or CustomerSettings.model_construct()  # field defaults only: no environment read
    _, schema = models_json_schema([(OrderEvent, "serialization")], ref_template="#/components/schemas/{model}")
    broker = urlsplit(broker_urls(settings.amqp_url)[0])
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order events",
            "version": version("shop-services"),
            "description": "What the order service publishes to RabbitMQ and how the customer service consumes it. "
            "Every event is applied exactly once; what can never be applied is dead-lettered.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": f"{broker.hostname}:{broker.port or 5672}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "Set with AMQP_URL.",
            },
        },
        "channels": _channels(settings),
        "operations": _operations(settings),
        "components": {
            "schemas": schema["$defs"],
            "messages": {
                "orderCreated": _event_message(ORDER_CREATED, "An order was placed."),
                "orderStatusChanged": _event_message(ORDER_STATUS_CHANGED, "An order moved along its lifecycle."),
                "deadLetter": _dead_letter_message(),
                "retry": _retry_message(),
            },
        },
    }


def _channels(settings: CustomerSettings) -> dict:
    """The events exchange's two routing keys, the work queue, its dead-letter queue and its retry queues."""
    return {
        "orderCreated": _exchange_channel(settings, ORDER_CREATED, "orderCreated"),
        "orderStatusChanged": _exchange_channel(settings, ORDER_STATUS_CHANGED, "orderStatusChanged"),
        "customerOrders": _queue_channel(
            settings.orders_queue,
            f"Quorum queue bound to `{ORDER_CREATED}`, delivery limit "
            f"{settings.delivery_limit}, dead-lettering to `{settings.dead_letter_exchange}`.",
            "orderCreated",
        ),
        "customerOrdersDeadLetter": _queue_channel(
            settings.dead_letter_queue,
            f"Quorum queue bound to the fanout exchange `{settings.dead_letter_exchange}`.",
            "deadLetter",
        ),
        **{
            f"customerOrdersRetry{delay}s": _queue_channel(
                settings.retry_queue(delay),
                f"Quorum queue bound to the direct exchange `{settings.retry_exchange}` under its own name, "
                f"message TTL {delay} s; an expired message is dead-lettered (at least once) through "
                f"`{settings.retry_exchange}` with routing key `{settings.orders_queue}`, "
                "back into the work queue. "
                f"Retry {n} of {len(settings.retry_delays)}.",
                "retry",
            )
            for n, delay in enumerate(settings.retry_delays, 1)
        },
    }


def _operations(settings: CustomerSettings) -> dict:
    """Who publishes, consumes, dead-letters and retries on each channel."""
    return {
        "publishOrderCreated": _operation(
            "send",
            "orderCreated",
            "orderCreated",
            "The order service's outbox relay publishes each new order.",
            {"deliveryMode": 2},
        ),
        "publishOrderStatusChanged": _operation(
            "send",
            "orderStatusChanged",
            "orderStatusChanged",
            "The order service's outbox relay publishes each lifecycle transition.",
            {"deliveryMode": 2},
        ),
        "consumeOrderCreated": _operation(
            "receive",
            "customerOrders",
            "orderCreated",
            "The customer service counts the order for its customer, then acks.",
            {"ack": True},
        ),
        "deadLetterOrderEvent": _operation(
            "send",
            "customerOrdersDeadLetter",
            "deadLetter",
            "The customer service sets aside a message it can never apply (not JSON, wrong schema, "
            "unknown customer, older than the deduplication window), or one whose retries ran out.",
            {"deliveryMode": 2},
        ),
        **{
            f"retryOrderEvent{delay}s": _operation(
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


def render() -> str:
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
