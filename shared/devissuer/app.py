"""The issuer's HTTP endpoints: discovery, the key set, the token endpoint and key rotation."""

import base64
import binascii
import secrets

from aiohttp import web

from shared.devissuer.issuer import Client, Issuer
from shared.scopes import SCOPES

ISSUER = web.AppKey("issuer", Issuer)


def oauth_error(status: int, error: str, description: str) -> web.Response:
    """RFC 6749 §5.2's error shape."""
    response = web.json_response({"error": error, "error_description": description}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="devissuer"'
    response.headers["Cache-Control"] = "no-store"
    return response


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def authenticated_client(request: web.Request) -> tuple[str, Client] | None:
    credentials = basic_credentials(request.headers.get("Authorization"))
    client = request.app[ISSUER].clients.get(credentials[0]) if credentials else None
    if credentials is None or client is None or not secrets.compare_digest(client.secret, credentials[1]):
        return None
    return credentials[0], client


async def token(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER]
    authenticated = authenticated_client(request)
    if authenticated is None:
        return oauth_error(401, "invalid_client", "Unknown client or wrong secret (HTTP Basic is required).")
    client_id, client = authenticated
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported.")
    asked = str(form.get("scope") or "").split()
    allowed = set(SCOPES) if client.scopes is None else client.scopes
    scopes = [scope for scope in asked if scope in allowed] if asked else sorted(allowed)
    if asked and len(scopes) != len(asked):
        return oauth_error(400, "invalid_scope", f"This client may ask for: {' '.join(sorted(allowed))}.")
    customer_id = str(form.get("customer_id") or "")
    if customer_id and (client.scopes is not None or not customer_id.isdigit()):
        return oauth_error(400, "invalid_request", "Only the development client may bind a token to a customer.")
    access_token = issuer.issue(client_id, scopes, int(customer_id) if customer_id else None)
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": issuer.lifetime,
        "scope": " ".join(scopes),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def jwks(request: web.Request) -> web.Response:
    return web.json_response({"keys": [key.public_jwk() for key in request.app[ISSUER].keys]})


async def discovery(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER]
    return web.json_response(
        {
            "issuer": issuer.url,
            "jwks_uri": f"{issuer.url}/jwks",
            "token_endpoint": f"{issuer.url}/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "id_token_signing_alg_values_supported": [issuer.algorithm],
            "scopes_supported": sorted(SCOPES),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }
    )


async def rotate(request: web.Request) -> web.Response:
    """Only a client that may ask for any scope (the development one) may rotate the keys."""
    authenticated = authenticated_client(request)
    if authenticated is None or authenticated[1].scopes is not None:
        return oauth_error(401, "invalid_client", "Rotating the keys takes the development client's credentials.")
    return web.json_response({"kid": request.app[ISSUER].rotate()})


def issuer_app(issuer: Issuer) -> web.Application:
    app = web.Application()
    app[ISSUER] = issuer
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    app.router.add_post("/token", token)
    app.router.add_post("/rotate", rotate)
    return app
