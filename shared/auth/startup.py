"""Authentication at a service's start: fail closed when unconfigured, warn about plain http, and the
key set's refresh task."""

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from shared.auth.access import AUTH, Access, Authenticator
from shared.auth.keys import KeySet
from shared.auth.tokens import Verifier
from shared.db import stop_tasks
from shared.settings import SharedSettings, not_configured

log = logging.getLogger(__name__)


class AuthNotConfigured(Exception):
    pass


def refuse_unconfigured(settings: SharedSettings) -> None:
    """Fail closed: AUTH_MODE=jwt without what it needs stops the start, naming the variable."""
    missing = settings.missing_auth_setting()
    if missing is not None:
        raise AuthNotConfigured(not_configured(missing))


def warn_about_plain_http(name: str, url: str | None) -> None:
    """http:// is fine on loopback and tolerated on a development network; say so at start."""
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme != "http":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        log.warning(
            "%s is plain http:// to %s: tokens and keys travel unprotected; use https:// outside development",
            name,
            host,
        )


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """The key set's session and its refresh task (AUTH_MODE=jwt only)."""
    auth = app[AUTH]
    settings = auth.settings
    assert settings.auth_jwks_url is not None and settings.auth_issuer is not None
    for name, url in (("AUTH_ISSUER", settings.auth_issuer), ("AUTH_JWKS_URL", settings.auth_jwks_url)):
        warn_about_plain_http(name, url)
    async with aiohttp.ClientSession() as session:
        auth.keys = KeySet(session, settings.auth_jwks_url, settings.auth_jwks_min_refresh, settings.auth_jwks_refresh)
        auth.verifier = Verifier(auth.keys, settings.auth_issuer, settings.auth_audience)
        task = asyncio.create_task(auth.keys.run(), name=f"{auth.realm} token keys")
        yield
        await stop_tasks([task])


def install_auth(app: web.Application, realm: str, settings: SharedSettings, access: Mapping[Callable, Access]) -> None:
    """Check every request of `app` (AUTH_MODE=jwt), or log loudly that nothing is checked (off)."""
    refuse_unconfigured(settings)
    if settings.auth_mode == "off":
        log.warning("AUTH_MODE=off: %s serves every request without a token; never expose it so", realm)
        return
    app[AUTH] = Authenticator(realm, settings, access)
    app.on_startup.append(_bind_routes)
    app.cleanup_ctx.append(auth_ctx)


async def _bind_routes(app: web.Application) -> None:
    app[AUTH].bind_routes(app)
