"""OpenAPI 3.1 built from the pydantic models that validate requests, served at `/openapi.json` and `/docs`.

A plain generator instead of a framework: each service lists its operations in its own `openapi.py`, and a
test compares that list with the app's router, so a route without docs fails the suite.
"""

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Literal

import orjson
import swagger_ui_bundle
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.auth.access import Access
from shared.problems import PROBLEM_CONTENT_TYPE
from shared.request_id import HEADER as REQUEST_ID_HEADER
from shared.scopes import SCOPES

REF_TEMPLATE = "#/components/schemas/{model}"
DOCS_STATIC = "/docs/static"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, exactly as `shared.problems.problem` renders them (every field always sent)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Literal["up"]]
    auth: Literal["off"] | None = Field(None, description="Present, as `off`, when the service checks no token.")


@dataclass(frozen=True)
class Raw:
    """A response body that is not a pydantic model: its media type and schema."""

    media_type: str
    schema: dict = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})
    required: bool = False


# status → (body, description); the body is a model (Problem means application/problem+json), Raw, or None.
Response = tuple[type[BaseModel] | Raw | None, str]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the router's canonical path, e.g. "/customers/{id}"
    operation_id: str
    summary: str
    tag: str
    responses: dict[int, Response]
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()  # integer ids, as `shared.http.path_id` reads them
    headers: tuple[Header, ...] = ()  # request headers besides X-Request-ID
    response_headers: dict[int, tuple[Header, ...]] = field(default_factory=dict)
    description: str = ""


# What `shared.http` and `shared.problems` answer for every route that parses a body, a query or an id:
# added to each operation that does so, unless the operation describes that status itself.
BODY_PROBLEMS: dict[int, Response] = {
    400: (Problem, "The body is empty or not valid JSON."),
    413: (Problem, "The body is larger than 1 MiB."),
    415: (Problem, "The body is not sent as application/json."),
    422: (Problem, "The body is invalid; `errors` names each bad field."),
}
QUERY_PROBLEMS: dict[int, Response] = {422: (Problem, "A query parameter is invalid; `errors` names it.")}
PATH_PROBLEMS: dict[int, Response] = {404: (Problem, "No resource with this id.")}
ANY_PROBLEMS: dict[int, Response] = {500: (Problem, "An unexpected error; the detail reveals no internals.")}

LOCATION = Header("Location", "The new resource's URL.")
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}

COMMON_OPERATIONS = [
    Operation("GET", "/health", "health", "The process is alive", "operations", {200: (Health, "Alive.")}),
    Operation(
        "GET",
        "/ready",
        "ready",
        "The database and the broker are reachable",
        "operations",
        {
            200: (Readiness, "Ready: every dependency is up."),
            503: (Problem, "Not ready; `errors` names each dependency that is down (`database`, `broker`)."),
        },
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        "operations",
        {200: (Raw("text/plain"), "Request counts and latencies, event counters, outbox backlog.")},
    ),
    Operation(
        "GET",
        "/openapi.json",
        "openapi",
        "This OpenAPI document",
        "operations",
        {200: (Raw("application/json", {"type": "object"}), "The OpenAPI 3.1 document.")},
    ),
    Operation(
        "GET",
        "/docs",
        "docs",
        "Interactive documentation (Swagger UI)",
        "operations",
        {200: (Raw("text/html"), "A page rendering this document.")},
    ),
]


def build_spec(title: str, description: str, operations: list[Operation]) -> dict:
    """The OpenAPI 3.1 document: inputs in pydantic's validation mode, outputs in serialization mode."""
    components: dict[str, dict] = {}
    refs = _model_refs(operations, components)
    paths: dict[str, dict] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version("shop-services"), "description": description},
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in operations)],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "parameters": {
                "RequestId": {
                    "name": REQUEST_ID_HEADER,
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Echoed in the response and logs if it is 1-128 visible ASCII characters "
                    "(no spaces); otherwise a new id is made up.",
                },
            },
            "headers": {
                "RequestId": {
                    "description": "The request's id: the client's, or a new one.",
                    "schema": {"type": "string"},
                },
            },
        },
    }


def _model_refs(operations: list[Operation], components: dict) -> dict:
    """One pydantic pass over every body model, so shared models land once in `components.schemas`."""
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        if op.request is not None:
            pairs.append((op.request, "validation"))
        for body, _ in op.responses.values():
            if isinstance(body, type) and issubclass(body, BaseModel):
                pairs.append((body, "serialization"))
    refs, schema = models_json_schema(list(dict.fromkeys(pairs)), ref_template=REF_TEMPLATE)
    components.update(schema.get("$defs", {}))
    return refs


def _operation(op: Operation, refs: dict, components: dict) -> dict:
    responses = dict(ANY_PROBLEMS)
    parameters: list[dict] = [{"$ref": "#/components/parameters/RequestId"}]
    for name in op.path_params:
        parameters.append({"name": name, "in": "path", "required": True, "schema": ID_SCHEMA})
        responses.update(PATH_PROBLEMS)
    if op.query is not None:
        parameters += _query_parameters(op.query, components)
        responses.update(QUERY_PROBLEMS)
    for header in op.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": header.required,
                "description": header.description,
                "schema": header.schema,
            }
        )
    result: dict = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        result["description"] = op.description
    result.update(tags=[op.tag], parameters=parameters)
    if op.request is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
        }
        responses.update(BODY_PROBLEMS)
    responses.update(op.responses)
    result["responses"] = {
        str(status): _response(body, description, op.response_headers.get(status, ()), refs)
        for status, (body, description) in sorted(responses.items())
    }
    return result


def _response(body, description: str, headers: tuple[Header, ...], refs: dict) -> dict:
    response: dict = {
        "description": description,
        "headers": {
            REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"},
            **{h.name: {"description": h.description, "schema": h.schema} for h in headers},
        },
    }
    if isinstance(body, Raw):
        response["content"] = {body.media_type: {"schema": body.schema}}
    elif body is not None:
        media_type = PROBLEM_CONTENT_TYPE if body is Problem else "application/json"
        response["content"] = {media_type: {"schema": refs[(body, "serialization")]}}
    return response


def _query_parameters(model: type[BaseModel], components: dict) -> list[dict]:
    schema = model.model_json_schema(mode="validation", ref_template=REF_TEMPLATE)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required, "schema": _not_null(prop)}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _not_null(prop: dict) -> dict:
    """`int | None = None` is an optional parameter; a query string cannot carry a JSON null."""
    variants = [v for v in prop.get("anyOf", ()) if v != {"type": "null"}]
    if len(variants) != 1 or len(prop["anyOf"]) != 2:
        return prop
    rest = {k: v for k, v in prop.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**variants[0], **rest}


# --- security (shared/auth/access.py) ---

AUTH_PROBLEMS = {
    401: "No bearer token, or one that is not valid (`WWW-Authenticate` says which).",
    403: "The token lacks the scope (named in `WWW-Authenticate`), or may not act for this customer.",
}


def _auth_problem(description: str) -> dict:
    return {
        "description": description,
        "headers": {
            REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"},
            "WWW-Authenticate": {"description": "The RFC 6750 Bearer challenge.", "schema": {"type": "string"}},
        },
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}},
    }


# Where the development issuer (shared/devissuer/) takes client credentials, when AUTH_TOKEN_URL says nothing.
DEV_TOKEN_URL = "http://127.0.0.1:3010/token"


def route_scopes(routes: Iterable[web.RouteDef], access: Mapping[Callable, Access]) -> dict[tuple[str, str], list[str]]:
    """The scopes of each (method, canonical path), from a service's access table (shared/auth/access.py)."""
    return {
        (route.method, re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)): access[route.handler].documented_scopes
        for route in routes
        if route.handler in access
    }


def secure(spec: dict, scopes: dict[tuple[str, str], list[str]], token_url: str) -> dict:
    """Declare the bearer scheme and OAuth2 client credentials, and on each operation of `scopes` (keyed by
    method and path) the scopes it takes (a status change: the one its target status needs)."""
    spec["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from the issuer (RS256/ES256), with this service's audience and the scope the "
            "operation names. In development: `make token SCOPE=...` (docs/auth.md).",
        },
        "oauth2": {
            "type": "oauth2",
            "description": "OAuth2 client credentials at the issuer's token endpoint (HTTP Basic).",
            "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": dict(SCOPES)}},
        },
    }
    for (method, path), needed in scopes.items():
        operation = spec["paths"].get(path, {}).get(method.lower())
        if operation is None:
            continue
        operation["security"] = [{"bearer": [scope]} for scope in needed] + [{"oauth2": [scope]} for scope in needed]
        responses = operation["responses"]
        for status, description in AUTH_PROBLEMS.items():
            responses.setdefault(str(status), _auth_problem(description))
        operation["responses"] = dict(sorted(responses.items()))
    return spec


# --- /openapi.json and /docs ---

OPENAPI_JSON = web.AppKey("openapi_json", bytes)
DOCS_HTML = web.AppKey("docs_html", bytes)

# Relative URLs, so the page also works behind a reverse proxy that mounts the service under a prefix.
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: true
    }});
  </script>
</body>
</html>
"""


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_JSON], content_type="application/json")


async def docs(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCS_HTML], content_type="text/html", charset="utf-8")


def add_docs_routes(app: web.Application, spec_builder: Callable[[], dict]) -> None:
    """Build the document now, in the app factory: a broken spec fails at start, and no request pays for it."""
    spec = spec_builder()
    app[OPENAPI_JSON] = orjson.dumps(spec)
    app[DOCS_HTML] = _DOCS_PAGE.format(title=html.escape(spec["info"]["title"])).encode()
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
    # Swagger UI's files from the installed package: the machines have no internet, so no CDN.
    app.router.add_static(DOCS_STATIC, swagger_ui_bundle.swagger_ui_path, name="swagger_ui")
