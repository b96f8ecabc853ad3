"""The documents a service serves, open like its probes: `/openapi.json` and `/docs` (Swagger UI),
`/asyncapi.json` and `/docs/events` (its events, shared/eventdocs.py). All built once, in the app factory."""

import html
from collections.abc import Callable

import orjson
import swagger_ui_bundle
from aiohttp import web

from shared.eventdocs import render_page

DOCS_STATIC = "/docs/static"

OPENAPI_JSON = web.AppKey("openapi_json", bytes)
DOCS_HTML = web.AppKey("docs_html", bytes)
ASYNCAPI_JSON = web.AppKey("asyncapi_json", bytes)
EVENTS_HTML = web.AppKey("events_html", bytes)

# Relative URLs, so the page also works behind a reverse proxy that mounts the service under a prefix.
_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
</head>
<body>
  <p style="font-family: sans-serif; margin: 1rem 2rem 0">The events: <a href="docs/events">docs/events</a></p>
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


def _serve(key: web.AppKey[bytes], content_type: str) -> Callable:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=request.app[key], content_type=content_type, charset="utf-8")

    return handler


def add_docs_routes(
    app: web.Application, spec_builder: Callable[[], dict], asyncapi_builder: Callable[[], dict] | None = None
) -> None:
    """Build the documents now, in the app factory: a broken one fails at start, and no request pays for it."""
    spec = spec_builder()
    app[OPENAPI_JSON] = orjson.dumps(spec)
    app[DOCS_HTML] = _DOCS_PAGE.format(title=html.escape(spec["info"]["title"])).encode()
    app.router.add_get("/openapi.json", _serve(OPENAPI_JSON, "application/json"))
    app.router.add_get("/docs", _serve(DOCS_HTML, "text/html"))
    if asyncapi_builder is not None:
        events = asyncapi_builder()
        app[ASYNCAPI_JSON] = orjson.dumps(events)
        app[EVENTS_HTML] = render_page(events).encode()
        app.router.add_get("/asyncapi.json", _serve(ASYNCAPI_JSON, "application/json"))
        app.router.add_get("/docs/events", _serve(EVENTS_HTML, "text/html"))
    # Swagger UI's files from the installed package: the machines have no internet, so no CDN.
    app.router.add_static(DOCS_STATIC, swagger_ui_bundle.swagger_ui_path, name="swagger_ui")
