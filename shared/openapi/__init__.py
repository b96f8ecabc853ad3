"""OpenAPI 3.1 built from the pydantic models that validate requests, served at `/openapi.json` and `/docs`.

A plain generator instead of a framework: each service lists its operations in its own `openapi.py`
(declare.py says how), build.py turns them into the document, security.py adds the bearer scheme and scopes,
serve.py serves it. A test compares the list with the app's router, so a route without docs fails the suite.
"""

from shared.openapi.build import ID_SCHEMA, REF_TEMPLATE, build_spec
from shared.openapi.declare import (
    COMMON_OPERATIONS,
    COMMON_TAGS,
    LOCATION,
    RETRY_AFTER,
    Errors,
    FieldError,
    Header,
    Operation,
    Problem,
    Raw,
    Response,
    unavailable,
)
from shared.openapi.security import DEV_TOKEN_URL, route_scopes, secure
from shared.openapi.serve import DOCS_STATIC, add_docs_routes

__all__ = [
    "COMMON_OPERATIONS",
    "COMMON_TAGS",
    "DEV_TOKEN_URL",
    "DOCS_STATIC",
    "ID_SCHEMA",
    "LOCATION",
    "REF_TEMPLATE",
    "RETRY_AFTER",
    "Errors",
    "FieldError",
    "Header",
    "Operation",
    "Problem",
    "Raw",
    "Response",
    "add_docs_routes",
    "build_spec",
    "route_scopes",
    "secure",
    "unavailable",
]
