"""Messages as received, held against the AsyncAPI document of their publisher (shared/asyncapi.py)."""

import orjson
from jsonschema import Draft202012Validator

from shared.asyncapi import channel_messages, resolvable


def _validator(schema: dict, document: dict) -> Draft202012Validator:
    return Draft202012Validator(resolvable(schema, document), format_checker=Draft202012Validator.FORMAT_CHECKER)


def undocumented(document: dict, messages: list) -> list[str]:
    """What each of `messages` (aiormq's delivered messages) does that the document does not say: a routing key
    with no channel, a body or headers its message's schemas refuse, or AMQP properties other than its bindings.
    Empty when every message is as documented."""
    channels = {channel["address"]: key for key, channel in document["channels"].items()}
    sends = {op["channel"]["$ref"].rsplit("/", 1)[-1]: op for op in document["operations"].values()}
    found = []
    for delivered in messages:
        key = channels.get(delivered.routing_key)
        if key is None:
            found.append(f"{delivered.routing_key}: no channel has this address")
            continue
        props = delivered.header.properties
        try:
            body = orjson.loads(delivered.body)
        except orjson.JSONDecodeError:
            found.append(f"{delivered.routing_key}: the body is not JSON")
            continue
        name = body.get("event_type") if isinstance(body, dict) else None
        message = channel_messages(document, key).get(name)
        if message is None:
            found.append(f"{delivered.routing_key}: the channel has no message {name!r}")
            continue
        where = f"{delivered.routing_key} {body.get('event_id')}"
        found += [f"{where}: body {e.message}" for e in _validator(message["payload"], document).iter_errors(body)]
        headers = props.headers or {}
        found += [
            f"{where}: headers {e.message}" for e in _validator(message["headers"], document).iter_errors(headers)
        ]
        expected = {
            "content_type": message.get("contentType", document.get("defaultContentType")),
            "message_type": message["bindings"]["amqp"]["messageType"],
            "delivery_mode": sends[key]["bindings"]["amqp"].get("deliveryMode"),
            "message_id": body.get("event_id"),
        }
        found += [
            f"{where}: {prop} is {getattr(props, prop)!r}, not {value!r}"
            for prop, value in expected.items()
            if getattr(props, prop) != value
        ]
    return found
