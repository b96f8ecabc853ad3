"""The issuer's key set (JWKS), fetched without blocking the event loop and kept while the issuer is away."""

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import jwt

from shared.auth.metrics import JWKS_FETCH_FAILURES
from shared.problems import ServiceUnavailable

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "ES256"]  # never `none`, never HS*: a public key must not double as a shared secret

FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5)


class KeysUnavailable(ServiceUnavailable):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "The token issuer's keys could not be fetched yet; nothing was changed, try again later.",
            retry_after=retry_after,
        )


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
