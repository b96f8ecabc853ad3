"""What each route asks of a token, checked on every request (the request middleware, shared/web.py),
and the refusals (RFC 6750) when it is not met."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from shared.auth.identity import bound_customer, identity_var
from shared.auth.keys import KeySet
from shared.auth.metrics import AUTH_FAILURES
from shared.auth.tokens import TokenInvalid, Verifier
from shared.http import DEFERRED_REFUSAL
from shared.metrics import BufferedCounter
from shared.problems import AppError
from shared.settings import SharedSettings

# Paths anyone may call: probes and scrapers (keep them off the public network), the API documents, and an
# operator's page, which holds no data and sends the operator's token with each call it makes.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/asyncapi.json", "/docs", "/ops/console"})

_failures = BufferedCounter(AUTH_FAILURES)


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


# --- the check on each request ----------------------------------------------------------------------------------------


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
                raise RuntimeError(
                    f"{route.method} {path} has no Access entry (shared/auth/access.py): it would be open"
                )

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


def require_customer(request: web.Request, customer_id: int | None) -> None:
    """A token bound to one customer may act for that customer only (None: for no one customer)."""
    bound = bound_customer()
    if bound is not None and bound != customer_id:
        raise Forbidden(request.app[AUTH].realm)


def require_staff(request: web.Request) -> None:
    """What no customer's own token may do."""
    if bound_customer() is not None:
        raise Forbidden(request.app[AUTH].realm)
