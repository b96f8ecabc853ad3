"""AsyncAPI 3.0 documents of a service's events, generated from the pydantic models on the wire.

Generated rather than written so a document cannot drift from the models the producer and the consumer use:
each service passes in its models, channels and operations (customer/asyncapi.py, order/asyncapi.py); this module
knows no service. Served at `/asyncapi.json` and as a page at `/docs/events` (shared/openapi/serve.py).
"""

from importlib.metadata import version
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.broker_urls import broker_urls
from shared.request_id import REQUEST_ID_AMQP_HEADER as REQUEST_ID

BINDING_VERSION = "0.3.0"
SCHEMAS = "#/components/schemas/{model}"

# The headers the order service's outbox relay sets on every event it publishes.
EVENT_HEADERS = {
    "type": "object",
    "properties": {
        REQUEST_ID: {"type": "string", "description": "The HTTP request that caused the event."},
        "x-actor": {"type": "string", "description": "The caller's token `sub`, where auth is on."},
        "traceparent": {
            "type": "string",
            "description": "W3C trace context of the publish (with tracing on; `tracestate` may follow).",
        },
        "tracestate": {"type": "string", "description": "W3C trace state, beside `traceparent`."},
    },
}


def event_message(
    event_type: str, model: type[BaseModel], summary: str, description: str, example: str | None = None
) -> dict:
    """A message whose payload is `model` with its `event_type` fixed; `example` is a body as published."""
    message: dict = {
        "name": event_type,
        "title": event_type,
        "summary": summary,
        "description": description,
        "contentType": "application/json",
        "headers": EVENT_HEADERS,
        "correlationId": {"location": f"$message.header#/{REQUEST_ID}"},
        "payload": {
            "allOf": [
                {"$ref": SCHEMAS.format(model=model.__name__)},
                {"properties": {"event_type": {"const": event_type}}},
            ],
        },
        "bindings": {"amqp": {"messageType": event_type, "bindingVersion": BINDING_VERSION}},
    }
    if example is not None:
        message["examples"] = [{"name": event_type, "summary": summary, "payload": orjson.loads(example)}]
    return message


def exchange_channel(exchange: str, kind: str, routing_key: str, message: str, description: str = "") -> dict:
    channel = {
        "address": routing_key,
        "title": f"{exchange} / {routing_key}",
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {"name": exchange, "type": kind, "durable": True, "autoDelete": False},
                "bindingVersion": BINDING_VERSION,
            }
        },
    }
    return channel | ({"description": description} if description else {})


def queue_channel(name: str, description: str, message: str) -> dict:
    return {
        "address": name,
        "title": name,
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


def operation(action: str, channel: str, message: str, summary: str, binding: dict) -> dict:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "summary": summary,
        "bindings": {"amqp": {**binding, "bindingVersion": BINDING_VERSION}},
    }


def asyncapi_document(
    title: str,
    description: str,
    amqp_url: str,
    models: list[type[BaseModel]],
    channels: dict,
    operations: dict,
    messages: dict,
) -> dict:
    """The document; `models` are the payloads the messages refer to, as pydantic serializes them."""
    _, schema = models_json_schema([(model, "serialization") for model in models], ref_template=SCHEMAS)
    broker = urlsplit(broker_urls(amqp_url)[0])
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version("shop-services"), "description": description},
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": f"{broker.hostname}:{broker.port or 5672}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "Set with AMQP_URL.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schema["$defs"], "messages": messages},
    }


def channel_messages(document: dict, channel: str) -> dict[str, dict]:
    """The messages of a channel, by name (an event's name is its type)."""
    messages = (
        document["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]
        for ref in document["channels"][channel]["messages"].values()
    )
    return {message["name"]: message for message in messages}


def resolvable(schema: dict, document: dict) -> dict:
    """`schema` with what its references need beside it: a schema a JSON Schema validator can take alone."""
    return {**schema, "components": document["components"]}


def message_payloads(document: dict, channel: str) -> dict[str, dict]:
    """Each message of a channel (by name) with its payload schema, ready for a validator."""
    return {name: resolvable(m["payload"], document) for name, m in channel_messages(document, channel).items()}
