"""The security of the OpenAPI documents: the bearer scheme, OAuth2 client credentials, each operation's scopes."""

import re
from collections.abc import Callable, Iterable, Mapping

from aiohttp import web

from shared.auth.access import Access, Forbidden, Unauthorized
from shared.auth.keys import KeysUnavailable
from shared.openapi.build import REF_TEMPLATE, header_refs
from shared.openapi.declare import REQUEST_ID, Header
from shared.problems import PROBLEM_CONTENT_TYPE, example_body, problem_body
from shared.scopes import SCOPES

WWW_AUTHENTICATE = Header(
    "WWW-Authenticate", "The RFC 6750 Bearer challenge.", example='Bearer realm="orders", error="invalid_token"'
)

# Where the development issuer (shared/devissuer/) takes client credentials, when AUTH_TOKEN_URL says nothing.
DEV_TOKEN_URL = "http://127.0.0.1:3010/token"


# (Made without the exceptions themselves: making one counts an authentication failure.)
AUTH_PROBLEMS = {
    401: (
        "No bearer token, or one that is not valid (`WWW-Authenticate` says which).",
        problem_body(Unauthorized.status, Unauthorized.title, "A valid bearer token is required."),
    ),
    403: (
        "The token lacks the scope (named in `WWW-Authenticate`), or may not act for this customer.",
        problem_body(Forbidden.status, Forbidden.title, "This token lacks the scope orders:write."),
    ),
}


# With AUTH_MODE=jwt, while the issuer's keys cannot be fetched (shared/auth/).
_KEYS_UNAVAILABLE = example_body(KeysUnavailable(retry_after=5))
KEYS_UNAVAILABLE = {"summary": _KEYS_UNAVAILABLE["detail"], "value": _KEYS_UNAVAILABLE}


def _auth_problem(description: str, example: dict, components: dict) -> dict:
    return {
        "description": description,
        "headers": header_refs((REQUEST_ID, WWW_AUTHENTICATE), components),
        "content": {
            PROBLEM_CONTENT_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}, "example": example}
        },
    }


def route_scopes(routes: Iterable[web.RouteDef], access: Mapping[Callable, Access]) -> dict[tuple[str, str], list[str]]:
    """The scopes of each (method, canonical path), from a service's access table (shared/auth/)."""
    return {
        (route.method, re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)): access[route.handler].documented_scopes
        for route in routes
        if route.handler in access
    }


def secure(spec: dict, scopes: dict[tuple[str, str], list[str]], token_url: str) -> dict:
    """Declare the bearer scheme and OAuth2 client credentials, and on each operation of `scopes` (keyed by
    method and path) the scopes it takes (a status change: the one its target status needs); every other
    operation is open (an empty `security`)."""
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
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            needed = scopes.get((method.upper(), path))
            if needed is None:
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": [s]} for s in needed] + [{"oauth2": [s]} for s in needed]
            responses = operation["responses"]
            if "503" in responses:  # its examples are a dict built for this document alone
                responses["503"]["content"][PROBLEM_CONTENT_TYPE]["examples"]["KeysUnavailable"] = KEYS_UNAVAILABLE
            for status, (description, example) in AUTH_PROBLEMS.items():
                responses.setdefault(str(status), _auth_problem(description, example, spec["components"]))
            operation["responses"] = dict(sorted(responses.items()))
    spec["components"]["headers"] = dict(sorted(spec["components"]["headers"].items()))
    return spec
