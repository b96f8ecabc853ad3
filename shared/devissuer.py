"""A development OAuth2 / OpenID Connect issuer: NOT FOR PRODUCTION (docs/auth.md).

Enough of an identity provider to run and test the services with real tokens: a discovery document,
the key set (JWKS), a client-credentials token endpoint (HTTP Basic client authentication), key
rotation on demand, and a command that prints a token. Keys live in memory: a restart makes new ones.
Signing is PyJWT's, with keys from cryptography.

    python -m shared.devissuer serve [--port 3010] [--host 127.0.0.1] [--issuer URL] [--allow-remote]
    python -m shared.devissuer token --scope "orders:write" [--customer-id 7] [--url http://127.0.0.1:3010]
    python -m shared.devissuer rotate [--url ...]          (or SIGHUP to the server)

Clients (id:secret:scopes; `*` any scope, and only such a client may ask for a `customer_id`):
`order-service:order-service-secret:customers:read` (the order service's own) and `dev:dev-secret:*`
(the `token` command's), or those given with --client, repeatable.
"""

import argparse
import asyncio
import base64
import binascii
import logging
import secrets
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.cli import command_parser, subcommands
from shared.scopes import CUSTOMERS_READ, ORDERS_READ, SCOPES

log = logging.getLogger("devissuer")

DEFAULT_PORT = 3010
DEFAULT_LIFETIME = 900  # seconds
DEFAULT_CLIENTS = (f"order-service:order-service-secret:{CUSTOMERS_READ}", "dev:dev-secret:*")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Published: the next key (so services have it before it signs anything), the signing key, and the one
# before it (its tokens stay valid until they expire).
KEYS_PUBLISHED = 3


def audiences(scopes: list[str]) -> list[str]:
    """The services the scopes are for: `orders:` ones the order service, the rest the customer service
    (its own and the dead-letter tools')."""
    wanted = {"order-service" if scope.startswith("orders:") else "customer-service" for scope in scopes}
    return sorted(wanted or {"customer-service", "order-service"})


@dataclass
class Client:
    secret: str
    scopes: frozenset[str] | None  # None: any

    @classmethod
    def parse(cls, text: str) -> tuple[str, "Client"]:
        client_id, secret, scopes = text.split(":", 2)
        return client_id, cls(secret, None if scopes == "*" else frozenset(scopes.split()))


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls, algorithm: str) -> "SigningKey":
        private = (
            rsa.generate_private_key(65537, 2048) if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1())
        )
        return cls(uuid.uuid4().hex[:16], algorithm, private)

    def public_jwk(self) -> dict:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


@dataclass
class Issuer:
    url: str
    clients: dict[str, Client]
    lifetime: int = DEFAULT_LIFETIME
    algorithm: str = "RS256"
    keys: list[SigningKey] = field(default_factory=list)  # the next, the signing one, the previous

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = [SigningKey.new(self.algorithm), SigningKey.new(self.algorithm)]
            log.info("signing with key %s", self.signing.kid)

    @property
    def signing(self) -> SigningKey:
        return self.keys[1]

    def rotate(self) -> str:
        """Sign with the key published ahead; publish a new next one; keep the previous one."""
        self.keys = [SigningKey.new(self.algorithm), *self.keys][:KEYS_PUBLISHED]
        log.info("signing with key %s now; the key set holds %s", self.signing.kid, [k.kid for k in self.keys])
        return self.signing.kid

    def issue(self, subject: str, scopes: list[str], customer_id: int | None = None) -> str:
        now = int(time.time())
        claims: dict = {
            "iss": self.url,
            "sub": subject,
            "aud": audiences(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_hex(8),
            "scope": " ".join(scopes),
            "client_id": subject,
        }
        if customer_id is not None:
            claims["customer_id"] = customer_id
        key = self.signing
        return jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})


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


def serve(args: argparse.Namespace) -> None:
    if args.host not in LOOPBACK and not args.allow_remote:
        sys.exit(
            f"refusing to listen on {args.host}: a development issuer signs any token; --allow-remote if you mean it"
        )
    clients = dict(Client.parse(text) for text in (args.client or DEFAULT_CLIENTS))
    if args.port is None:  # behind a name of its own (compose), it listens on its issuer URL's port
        args.port = (urlsplit(args.issuer).port if args.issuer else None) or DEFAULT_PORT
    url = (args.issuer or f"http://{'127.0.0.1' if args.host in LOOPBACK else args.host}:{args.port}").rstrip("/")
    issuer = Issuer(url, clients, args.lifetime, args.algorithm)
    app = issuer_app(issuer)

    async def rotate_on_sighup(app: web.Application) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, issuer.rotate)

    app.on_startup.append(rotate_on_sighup)
    log.warning("development issuer %s: NOT FOR PRODUCTION (it signs whatever its clients ask)", url)
    web.run_app(app, host=args.host, port=args.port, print=lambda _: print(f"issuer {url} listening", flush=True))


async def _request_token(url: str, client: str, scopes: str, customer_id: int | None) -> str:
    client_id, _, secret = client.partition(":")
    form = {"grant_type": "client_credentials", "scope": scopes}
    if customer_id is not None:
        form["customer_id"] = str(customer_id)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/token", data=form, headers={"Authorization": aiohttp.encode_basic_auth(client_id, secret)}
        ) as response,
    ):
        body = await response.json(content_type=None)
        if response.status != 200:
            raise SystemExit(f"the issuer refused: {body.get('error')}: {body.get('error_description')}")
        return body["access_token"]


async def _rotate(url: str, client: str) -> str:
    client_id, _, secret = client.partition(":")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/rotate", headers={"Authorization": aiohttp.encode_basic_auth(client_id, secret)}
        ) as response,
    ):
        body = await response.json(content_type=None)
        if response.status != 200:
            raise SystemExit(f"the issuer refused: {body.get('error_description')}")
        return body["kid"]


def main(argv: list[str] | None = None) -> None:
    parser = command_parser("shared.devissuer", __doc__, verbose=False)
    commands = subcommands(parser)
    run = commands.add_parser("serve", help="run the issuer")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, help=f"default: the --issuer URL's port, else {DEFAULT_PORT}")
    run.add_argument("--issuer", help="the issuer URL tokens name (default http://HOST:PORT)")
    run.add_argument("--allow-remote", action="store_true", help="listen on a non-loopback address")
    run.add_argument("--client", action="append", help="id:secret:scopes (space-separated, or *); repeatable")
    run.add_argument("--lifetime", type=int, default=DEFAULT_LIFETIME, help="token lifetime, seconds")
    run.add_argument("--algorithm", choices=["RS256", "ES256"], default="RS256")
    get = commands.add_parser("token", help="print a token from a running issuer")
    get.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    get.add_argument("--scope", default=f"{CUSTOMERS_READ} {ORDERS_READ}", help="space-separated scopes")
    get.add_argument("--customer-id", type=int, help="bind the token to one customer")
    get.add_argument("--client", default="dev:dev-secret", help="id:secret")
    rot = commands.add_parser("rotate", help="make a running issuer sign with a new key")
    rot.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    rot.add_argument("--client", default="dev:dev-secret", help="id:secret")
    args = parser.parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s devissuer %(levelname)s %(message)s")
        serve(args)
    elif args.command == "token":
        print(asyncio.run(_request_token(args.url.rstrip("/"), args.client, args.scope, args.customer_id)))
    else:
        print(asyncio.run(_rotate(args.url.rstrip("/"), args.client)))


if __name__ == "__main__":
    main()
