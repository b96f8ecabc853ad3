"""A development OAuth2 / OpenID Connect issuer: NOT FOR PRODUCTION (docs/auth.md).

The command line: `serve` runs the issuer, `token` prints a token from a running one, `rotate` makes it
sign with a new key (shared/devissuer/__init__.py says more).
"""

import argparse
import asyncio
import logging
import signal
import sys
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from shared.cli import command_parser, subcommands
from shared.devissuer.app import issuer_app
from shared.devissuer.issuer import DEFAULT_LIFETIME, Client, Issuer
from shared.scopes import CUSTOMERS_READ, ORDERS_READ

log = logging.getLogger("devissuer")

DEFAULT_PORT = 3010
DEFAULT_CLIENTS = (f"order-service:order-service-secret:{CUSTOMERS_READ}", "dev:dev-secret:*")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


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
    # The docstring's first paragraph: the second names the subcommands, which argparse lists itself.
    parser = command_parser("shared.devissuer", (__doc__ or "").split("\n\n")[0], verbose=False)
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
