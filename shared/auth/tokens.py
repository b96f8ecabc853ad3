"""Verifying a bearer token (a JWT) into the caller's identity, and keeping it until it expires."""

import time
from collections.abc import Mapping

import jwt

from shared.auth.identity import Identity
from shared.auth.keys import ALGORITHMS, KeySet

LEEWAY = 30  # seconds of clock difference allowed on exp, nbf and iat
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]

MAX_CACHED_TOKENS = 10_000
MAX_SUBJECT = 255  # a `sub` is stored as the actor of what it did (order/models.py)


class TokenInvalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
