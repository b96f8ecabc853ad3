"""The service's own access token, for calling another service (OAuth2 client credentials)."""

import asyncio
import logging

import aiohttp

from shared.auth.keys import FETCH_TIMEOUT
from shared.auth.metrics import TOKEN_RENEWAL_FAILURES

log = logging.getLogger(__name__)


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
