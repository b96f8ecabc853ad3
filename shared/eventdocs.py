"""The AsyncAPI document as a readable page, rendered on the server: no script and nothing from a CDN, so it
works offline and behind any proxy. Each message's fields come from its payload schema, so the page says
what the document says."""

import html
import json

_STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2.5rem}table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f4f4f4}
code,pre{font:13px ui-monospace,monospace;background:#f6f6f6}pre{padding:.7rem;overflow:auto}
.action{font-weight:bold;text-transform:uppercase;color:#fff;padding:.1rem .4rem;border-radius:3px}
.send{background:#2a7ae2}.receive{background:#3a9a4a}"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _resolve(schema: dict, components: dict) -> dict:
    """`schema` with its `$ref` followed and its `allOf` merged: the properties a reader sees."""
    if "$ref" in schema:
        return _resolve(
            {**components["schemas"][schema["$ref"].rsplit("/", 1)[-1]], **_without(schema, "$ref")}, components
        )
    if "allOf" in schema:
        merged: dict = {"properties": {}, "required": []}
        for part in schema["allOf"]:
            part = _resolve(part, components)
            for name, prop in part.get("properties", {}).items():
                merged["properties"][name] = {**merged["properties"].get(name, {}), **prop}
            merged["required"] += part.get("required", [])
            merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
        return merged
    return schema


def _without(schema: dict, key: str) -> dict:
    return {k: v for k, v in schema.items() if k != key}


def _type(schema: dict) -> str:
    if "const" in schema:
        return f"= {json.dumps(schema['const'])}"
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_type(v) for v in schema["anyOf"])
    kind = schema.get("type", "any")
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _rows(schema: dict, components: dict, prefix: str = "") -> list[tuple[str, str, bool, str]]:
    """(field, type, required, description) of each property, nested objects flattened with dotted names."""
    schema = _resolve(schema, components)
    rows = []
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(prop, components)
        nested = prop.get("properties")
        rows.append((prefix + name, "object" if nested else _type(prop), name in required, prop.get("description", "")))
        if nested:
            rows += _rows(prop, components, f"{prefix}{name}.")
    return rows


def _table(schema: dict, components: dict) -> str:
    rows = _rows(schema, components)
    if not rows:
        return f"<p>{_e(schema.get('description', 'Any body.'))}</p>"
    body = "".join(
        f"<tr><td><code>{_e(n)}</code></td><td>{_e(t)}</td><td>{'yes' if r else ''}</td><td>{_e(d)}</td></tr>"
        for n, t, r, d in rows
    )
    return f"<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>{body}</table>"


def _message(key: str, message: dict, components: dict) -> str:
    parts = [f'<h3 id="message-{_e(key)}">{_e(message.get("title", key))}</h3>']
    parts += [f"<p>{_e(message[k])}</p>" for k in ("summary", "description") if k in message]
    if "headers" in message:
        parts.append("<h4>Headers</h4>" + _table(message["headers"], components))
    parts.append("<h4>Payload</h4>" + _table(message.get("payload", {}), components))
    for example in message.get("examples", ()):
        parts.append(f"<h4>Example</h4><pre>{_e(json.dumps(example['payload'], indent=2))}</pre>")
    return "".join(parts)


def _binding(channel: dict) -> str:
    amqp = channel.get("bindings", {}).get("amqp", {})
    if amqp.get("is") == "queue":
        return f"queue <code>{_e(amqp['queue']['name'])}</code>"
    exchange = amqp.get("exchange", {})
    return f"{_e(exchange.get('type', ''))} exchange <code>{_e(exchange.get('name', ''))}</code>, routing key"


def _operation(key: str, op: dict, document: dict) -> str:
    channel = document["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]
    messages = ", ".join(
        f'<a href="#message-{_e(m["$ref"].rsplit("/", 1)[-1])}">{_e(m["$ref"].rsplit("/", 1)[-1])}</a>'
        for m in (channel["messages"][ref["$ref"].rsplit("/", 1)[-1]] for ref in op["messages"])
    )
    description = f"<p>{_e(channel['description'])}</p>" if "description" in channel else ""
    return (
        f'<h3 id="operation-{_e(key)}"><span class="action {_e(op["action"])}">{_e(op["action"])}</span> '
        f"<code>{_e(channel['address'])}</code></h3><p>{_e(op.get('summary', ''))}</p>"
        f"<p>On the {_binding(channel)} <code>{_e(channel['address'])}</code>; message: {messages}.</p>{description}"
    )


def render_page(document: dict) -> str:
    info, components = document["info"], document["components"]
    servers = "".join(
        f"<li><code>{_e(s['protocol'])}://{_e(s['host'])}</code> — {_e(s.get('description', ''))}</li>"
        for s in document.get("servers", {}).values()
    )
    operations = "".join(_operation(k, op, document) for k, op in document["operations"].items())
    messages = "".join(_message(k, m, components) for k, m in components["messages"].items())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(info["title"])}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(info['title'])}</h1>"
        f"<p>AsyncAPI {_e(document['asyncapi'])}, version {_e(info['version'])}. "
        f'The document: <a href="../asyncapi.json">asyncapi.json</a>; the HTTP API: <a href="../docs">docs</a>.</p>'
        f"<p>{_e(info.get('description', ''))}</p><h2>Servers</h2><ul>{servers}</ul>"
        f"<h2>Operations</h2>{operations}<h2>Messages</h2>{messages}</body></html>"
    )
