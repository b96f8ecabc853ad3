"""Bearer tokens (OAuth2 resource server, RFC 6750): who calls, and what each route lets them do.

A token is a JWT signed with RS256 or ES256 by a key of the issuer's JWKS; `iss`, `aud`, `exp` and
`sub` are required. The key set is fetched with the app's own ClientSession (PyJWKClient would block
the event loop), kept while the issuer is away, and fetched again for an unknown key id at most once
per AUTH_JWKS_MIN_REFRESH. A verified token is kept until it expires, so a client's next request
costs a dictionary lookup.

Each service declares, beside its routes, the scope each handler needs and what a token bound to one
customer (`customer_id` claim) may do there: `access = {handler: Access(scope, customer=...)}`. Every
route must be in that table or among the open ones (probes, metrics, docs); the app refuses to build
otherwise, so a new route cannot be left open by forgetting it.
"""

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import jwt
from aiohttp import web

from shared.db import stop_tasks
from shared.http import DEFERRED_REFUSAL
from shared.metrics import BufferedCounter, Counter
from shared.problems import AppError, ServiceUnavailable
from shared.settings import SharedSettings, not_configured

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "ES256"]  # never `none`, never HS*: a public key must not double as a shared secret
LEEWAY = 30  # seconds of clock difference allowed on exp, nbf and iat
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5)
MAX_CACHED_TOKENS = 10_000
MAX_SUBJECT = 255  # a `sub` is stored as the actor of what it did (order/models.py)
# Paths anyone may call: probes and scrapers (keep them off the public network), the API documents, and an
# operator's page, which holds no data and sends the operator's token with each call it makes.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/asyncapi.json", "/docs", "/ops/console"})

AUTH_FAILURES = Counter("auth_failures_total", "Requests refused by authentication or authorisation", ["reason"])
JWKS_FETCH_FAILURES = Counter("auth_jwks_fetch_failures_total", "Failed fetches of the issuer's key set")
TOKEN_RENEWAL_FAILURES = Counter(
    "auth_token_renewal_failures_total", "Failed attempts to get the service's own token from the issuer"
)
REASONS = ("missing", "invalid", "expired", "unknown_key", "scope", "customer")
for _reason in REASONS:
    AUTH_FAILURES.labels(_reason)
_failures = BufferedCounter(AUTH_FAILURES)


# --- what a route needs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Access:
    """What a route asks of a token.

    `scope`: the scope it needs; None when the handler decides by what the request asks for (a PATCH
    whose scope depends on its target status), with require_scope().
    `customer`: what a token bound to one customer may do here: `refused` (staff only), `path` (only
    when the route's `{id}` is that customer), or `handler` (the handler checks, with require_customer()).
    """

    scope: str | None
    customer: Literal["refused", "path", "handler"] = "refused"
    among: tuple[str, ...] = ()  # with scope None: the scopes the handler chooses from (for the API docs)

    @property
    def documented_scopes(self) -> list[str]:
        return [self.scope] if self.scope is not None else list(self.among)


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    scopes: frozenset[str]
    customer_id: int | None  # a customer's own token; None for staff and services
    expires: float  # epoch seconds, the leeway included


# The caller of the request in progress (aiohttp runs each request in a task of its own); None with
# AUTH_MODE=off, on an open route, and outside requests.
identity_var: ContextVar[Identity | None] = ContextVar("identity", default=None)


ACTOR_AMQP_HEADER = "x-actor"  # on each event: the `sub` of whoever caused it


def current_actor() -> str | None:
    """The caller's `sub`: who did it, for logs and events (never the token)."""
    identity = identity_var.get()
    return identity.subject if identity is not None else None


# --- refusals (RFC 6750) ---------------------------------------------------------------------------------


class Unauthorized(AppError):
    """No token, or one we cannot accept: 401 with a Bearer challenge."""

    status, title = 401, "Unauthorized"

    def __init__(self, realm: str, reason: str, token_sent: bool) -> None:
        super().__init__("A valid bearer token is required." if not token_sent else "The bearer token is not valid.")
        challenge = f'Bearer realm="{realm}"'
        if token_sent:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}
        _failures.inc(reason)


class Forbidden(AppError):
    """A valid token that does not allow this: 403, the scope named in the challenge when one is missing."""

    status, title = 403, "Forbidden"

    def __init__(self, realm: str, scope: str | None = None) -> None:
        if scope is None:  # a customer's own token reaching for another customer's data
            super().__init__("This token may not act on this resource.")
            _failures.inc("customer")
        else:
            super().__init__(f"This token lacks the scope {scope}.")
            self.headers = {"WWW-Authenticate": f'Bearer realm="{realm}", error="insufficient_scope", scope="{scope}"'}
            _failures.inc("scope")


class KeysUnavailable(ServiceUnavailable):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "The token issuer's keys could not be fetched yet; nothing was changed, try again later.",
            retry_after=retry_after,
        )


class TokenInvalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the key set -----------------------------------------------------------------------------------------


class KeySet:
    """The issuer's public keys by key id, fetched without blocking the event loop."""

    def __init__(self, session: aiohttp.ClientSession, url: str, min_refresh: float, refresh: float) -> None:
        self.session = session
        self.url = url
        self.min_refresh = min_refresh
        self.refresh = refresh
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched = False  # once any key set was fetched
        self._last_attempt = -float("inf")  # event-loop time, of any fetch
        self._last_refetch = -float("inf")  # of the last one an unknown key id caused
        self._fetch: asyncio.Future[bool] | None = None
        self.on_change: Callable[[], None] = lambda: None

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key named `kid`; an unknown one fetches the set again, at most once per min_refresh.
        KeysUnavailable while no key set was ever fetched."""
        found = self._lookup(kid)
        if found is None and self._refetch_allowed():
            self._last_refetch = asyncio.get_running_loop().time()
            await self.fetch()
            found = self._lookup(kid)
        if found is None and not self.fetched:
            wait = self._last_attempt + self.min_refresh - asyncio.get_running_loop().time()
            raise KeysUnavailable(max(1, int(wait) + 1))
        return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:  # an issuer with one key may leave `kid` out
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)

    def _refetch_allowed(self) -> bool:
        """A fetch in flight is joined; a new one waits min_refresh after the last an unknown key id
        caused (routine fetches do not count: a key rotated in just after one is fetched at once)."""
        return self._fetch is not None or asyncio.get_running_loop().time() - self._last_refetch >= self.min_refresh

    async def fetch(self) -> bool:
        """Fetch the set once; callers that come meanwhile share that fetch. False when it failed."""
        if self._fetch is None:
            self._last_attempt = asyncio.get_running_loop().time()
            self._fetch = asyncio.create_task(self._download(), name="token keys fetch")
            self._fetch.add_done_callback(self._fetched)
        return await asyncio.shield(self._fetch)

    def _fetched(self, _: asyncio.Future) -> None:
        self._fetch = None

    async def _download(self) -> bool:
        try:
            async with self.session.get(self.url, timeout=FETCH_TIMEOUT, raise_for_status=True) as response:
                document = await response.json(content_type=None)
            keys = {
                key.key_id: key
                for key in jwt.PyJWKSet.from_dict(document).keys
                if key.key_id and key.public_key_use in (None, "sig") and key.algorithm_name in ALGORITHMS
            }
            if not keys:
                raise ValueError("no RS256 or ES256 signing key with a key id")
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as exc:
            JWKS_FETCH_FAILURES.inc()
            kept = f"keeping the {len(self.keys)} key(s) fetched before" if self.fetched else "no keys yet"
            log.warning(
                "could not fetch the token issuer's keys from %s (%s: %s); %s", self.url, type(exc).__name__, exc, kept
            )
            return False
        removed = self.keys.keys() - keys.keys()
        if keys.keys() != self.keys.keys():
            log.info("token issuer's keys now: %s", ", ".join(sorted(keys)))
        self.keys, self.fetched = keys, True
        if removed:
            self.on_change()  # tokens verified with a key the issuer withdrew are not trusted any longer
        return True

    async def run(self) -> None:
        """Fetch at start, then every `refresh` seconds; while fetches fail, every `min_refresh`."""
        while True:
            ok = await self.fetch()
            await asyncio.sleep(self.refresh if ok else self.min_refresh)


# --- tokens ----------------------------------------------------------------------------------------------


def scopes_of(claims: Mapping) -> frozenset[str]:
    """`scope` (RFC 8693: space-separated) and `scp` (a list, as Azure AD and Okta send it)."""
    scope, scp = claims.get("scope"), claims.get("scp")
    found = scope.split() if isinstance(scope, str) else []
    if isinstance(scp, str):
        found += scp.split()
    elif isinstance(scp, list):
        found += [item for item in scp if isinstance(item, str)]
    return frozenset(found)


def customer_of(claims: Mapping) -> int | None:
    value = claims.get("customer_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise TokenInvalid("invalid")
    return int(value)


class Verifier:
    def __init__(self, keys: KeySet, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.verified: dict[str, Identity] = {}  # token -> who, until it expires
        keys.on_change = self.forget_all

    async def identity(self, token: str) -> Identity:
        """The token's identity; TokenInvalid naming why not (KeysUnavailable before any key was fetched)."""
        known = self.verified.get(token)
        if known is not None:
            if known.expires > time.time():
                return known
            del self.verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("invalid") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenInvalid("invalid")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise TokenInvalid("unknown_key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenInvalid("expired") from None
        except jwt.PyJWTError:
            raise TokenInvalid("invalid") from None
        if not isinstance(claims["sub"], str) or not 1 <= len(claims["sub"]) <= MAX_SUBJECT:
            raise TokenInvalid("invalid")
        identity = Identity(claims["sub"], scopes_of(claims), customer_of(claims), float(claims["exp"]) + LEEWAY)
        self._remember(token, identity)
        return identity

    def _remember(self, token: str, identity: Identity) -> None:
        if len(self.verified) >= MAX_CACHED_TOKENS:
            now = time.time()
            self.verified = {t: i for t, i in self.verified.items() if i.expires > now}
            if len(self.verified) >= MAX_CACHED_TOKENS:
                self.verified = {}
        self.verified[token] = identity

    def forget_all(self) -> None:
        self.verified = {}


# --- the app's side ----------------------------------------------------------------------------------------


class Authenticator:
    """Checks each request against its route's Access, in the request middleware (shared/web.py)."""

    def __init__(self, realm: str, settings: SharedSettings, access: Mapping[Callable, Access]) -> None:
        self.realm = realm
        self.settings = settings
        self.access = access
        self.by_route: dict[web.AbstractRoute, Access | None] = {}
        self.keys: KeySet | None = None
        self.verifier: Verifier | None = None

    def bind_routes(self, app: web.Application) -> None:
        """Each route's Access, by the route object (one dictionary lookup per request). Raises for a
        route that is neither open nor in the table."""
        for route in app.router.routes():
            resource = route.resource
            path = resource.canonical if resource is not None else ""
            if path in OPEN_PATHS or path.startswith("/docs/"):
                self.by_route[route] = None
            elif route.handler in self.access:
                self.by_route[route] = self.access[route.handler]
            else:
                raise RuntimeError(f"{route.method} {path} has no Access entry (shared/auth.py): it would be open")

    async def check(self, request: web.Request) -> None:
        """Raise Unauthorized, Forbidden or KeysUnavailable unless the request may go on; set identity_var."""
        match = request.match_info
        if match.http_exception is not None:
            return  # no such route or method: the router's 404 or 405
        access = self.by_route.get(match.route)
        if access is None:
            return  # an open route
        header = request.headers.get("Authorization")
        if not header:
            raise Unauthorized(self.realm, "missing", token_sent=False)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(self.realm, "invalid", token_sent=True)
        assert self.verifier is not None, "auth_ctx starts before any request"
        try:
            identity = await self.verifier.identity(token.strip())
        except TokenInvalid as exc:
            raise Unauthorized(self.realm, exc.reason, token_sent=True) from None
        identity_var.set(identity)
        refusal = None
        if access.scope is not None and access.scope not in identity.scopes:
            refusal = Forbidden(self.realm, access.scope)
        elif identity.customer_id is not None and (
            access.customer == "refused" or (access.customer == "path" and match.get("id") != str(identity.customer_id))
        ):
            refusal = Forbidden(self.realm)
        if refusal is not None:
            if request.method in BODY_METHODS:  # the documented order: a bad body is a 422 before a 403
                request[DEFERRED_REFUSAL] = refusal
            else:
                raise refusal


AUTH = web.AppKey("auth", Authenticator)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def require_scope(request: web.Request, scope: str) -> None:
    """For a handler whose scope depends on the request (checked after its body was validated)."""
    identity = identity_var.get()
    if identity is not None and scope not in identity.scopes:
        raise Forbidden(request.app[AUTH].realm, scope)


def bound_customer() -> int | None:
    """The customer the caller's token is bound to, or None (staff, services, AUTH_MODE=off)."""
    identity = identity_var.get()
    return identity.customer_id if identity is not None else None


def require_customer(request: web.Request, customer_id: int | None) -> None:
    """A token bound to one customer may act for that customer only (None: for no one customer)."""
    bound = bound_customer()
    if bound is not None and bound != customer_id:
        raise Forbidden(request.app[AUTH].realm)


def require_staff(request: web.Request) -> None:
    """What no customer's own token may do."""
    if bound_customer() is not None:
        raise Forbidden(request.app[AUTH].realm)


# --- a service's own token -------------------------------------------------------------------------------


class ServiceToken:
    """The service's own access token, by OAuth2 client credentials (RFC 6749 §4.4, HTTP Basic client
    authentication), renewed in the background when three quarters of its life have passed, so an
    issuer outage shorter than the rest of its life changes nothing. Never the caller's token."""

    RENEW_AT = 0.75
    RETRY_AT_MOST = 30.0  # seconds between attempts while the issuer fails

    def __init__(self, session: aiohttp.ClientSession, url: str, client_id: str, secret: str, scope: str) -> None:
        self.session = session
        self.url = url
        self.scope = scope
        self.authorization = aiohttp.encode_basic_auth(client_id, secret)
        self.token: str | None = None
        self.expires = 0.0  # event-loop time
        self.problem = "no token was fetched yet"  # why current() is None, for the 503 it causes

    def current(self) -> str | None:
        if self.token is not None and asyncio.get_running_loop().time() < self.expires:
            return self.token
        return None

    async def renew(self) -> float:
        """Fetch a token; the seconds until the next renewal. Raises on failure."""
        form = {"grant_type": "client_credentials", "scope": self.scope}
        headers = {"Authorization": self.authorization}
        started = asyncio.get_running_loop().time()
        async with self.session.post(self.url, data=form, headers=headers, timeout=FETCH_TIMEOUT) as response:
            body = await response.json(content_type=None)
            if response.status != 200 or not isinstance(body, dict) or not body.get("access_token"):
                error = body.get("error") if isinstance(body, dict) else None
                raise ValueError(f"the issuer answered {response.status} {error or ''}".rstrip())
        lifetime = float(body.get("expires_in") or 300)
        self.token, self.expires = str(body["access_token"]), started + lifetime
        return lifetime * self.RENEW_AT

    async def run(self) -> None:
        retry = 1.0
        while True:
            try:
                wait = await self.renew()
                retry = 1.0
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                TOKEN_RENEWAL_FAILURES.inc()
                remaining = self.expires - asyncio.get_running_loop().time()
                self.problem = f"its token issuer could not be reached ({type(exc).__name__}: {exc})"
                log.warning(
                    "could not renew the service's token at %s: %s; %s",
                    self.url,
                    exc,
                    f"the current one is valid {remaining:.0f} s more" if remaining > 0 else "it has none",
                )
                wait = min(retry, self.RETRY_AT_MOST, max(remaining / 2, 1.0))
                retry *= 2
            await asyncio.sleep(wait)


# --- start-up ----------------------------------------------------------------------------------------------


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
