"""Helpers for the services' documentation tests: router against spec, and the spec's own schemas."""

import re

from aiohttp import web
from jsonschema import Draft202012Validator
from pydantic import BaseModel


def routed(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, canonical path) of each route; HEAD is aiohttp's automatic twin of GET, static files are files."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and not isinstance(route.resource, web.StaticResource)
    }


def documented(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item}


# How Swagger UI (5.x) renders an operation's summary line: its method, then its path.
_RENDERED_OPERATION = re.compile(r'opblock-summary-method">(\w+)</span>.*?data-path="([^"]*)"')


def rendered(dom: str) -> set[tuple[str, str]]:
    """(METHOD, path) of each operation Swagger UI rendered in a page's DOM."""
    return set(_RENDERED_OPERATION.findall(dom))


def schema_validator(spec: dict, component: str) -> Draft202012Validator:
    """A validator for one of the spec's component schemas, its `$ref`s resolved inside the spec."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": spec["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_spec_and_model_agree(spec: dict, component: str, model: type[BaseModel], body: object, valid: bool) -> None:
    """The document's schema and the pydantic model both accept `body`, or both reject it."""
    assert schema_validator(spec, component).is_valid(body) is valid
    try:
        model.model_validate(body)
        model_accepts = True
    except ValueError:
        model_accepts = False
    assert model_accepts is valid


# --- Markdown documents -----------------------------------------------------------------------------------------

_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(markdown: str) -> str:
    """The document without its fenced code blocks (a `#` in a shell example is no heading)."""
    return _FENCE.sub("", markdown)


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {anchor(heading) for heading in _HEADING.findall(prose(markdown))}


def relative_links(markdown: str) -> list[str]:
    """The targets of the document's links that point into the repository (no scheme, no mail)."""
    return [target for target in _LINK.findall(prose(markdown)) if not re.match(r"^[a-z]+:", target)]
