"""Token issuers for the tests: the project's development issuer as a real process, and one made from
keys the tests hold (to forge what no honest issuer would sign, and to go down on demand)."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.testing.processes import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUSTOMER_AUDIENCE, ORDER_AUDIENCE = "customer-service", "order-service"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class IssuerEndpoints:
    """Where an issuer at `url` serves its key set and its tokens."""

    url: str

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def service_settings(self) -> dict:
        """The settings overrides of a service that checks this issuer's tokens (AUTH_MODE=jwt)."""
        return {"auth_mode": "jwt", "auth_issuer": self.url, "auth_jwks_url": self.jwks_url}


@dataclass
class DevIssuer(IssuerEndpoints):
    """`python -m shared.devissuer serve` on a free port; stop() and start() again (new keys) at will."""

    port: int = field(default_factory=free_port)
    lifetime: int = 900
    process: subprocess.Popen | None = None
    clients: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> "DevIssuer":
        argv = [sys.executable, "-m", "shared.devissuer", "serve", "--port", str(self.port)]
        argv += ["--lifetime", str(self.lifetime)]
        for client in self.clients:
            argv += ["--client", client]
        self.process = spawn(argv)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(self.jwks_url) as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the development issuer did not start")
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    async def token(self, scope: str, customer_id: int | None = None, client: str = "dev:dev-secret") -> str:
        client_id, _, secret = client.partition(":")
        form = {"grant_type": "client_credentials", "scope": scope}
        if customer_id is not None:
            form["customer_id"] = str(customer_id)
        headers = {"Authorization": aiohttp.encode_basic_auth(client_id, secret)}
        async with aiohttp.ClientSession() as session, session.post(self.token_url, data=form, headers=headers) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["access_token"]

    async def rotate(self) -> str:
        headers = {"Authorization": aiohttp.encode_basic_auth("dev", "dev-secret")}
        async with aiohttp.ClientSession() as session, session.post(f"{self.url}/rotate", headers=headers) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["kid"]


class OwnIssuer(IssuerEndpoints):
    """An issuer the test controls: its own RSA and EC keys, a JWKS it serves (or not, while `down`),
    and tokens signed with any claims, header or key."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(65537, 2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid, self.ec_kid = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
        self.published = {self.rsa_kid: ("RS256", self.rsa), self.ec_kid: ("ES256", self.ec)}
        self.down = False
        self.jwks_requests = 0
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/jwks", self._jwks)
        app.router.add_post("/token", self._token)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        """Client credentials for any client: a token for both services with the scopes asked for."""
        if self.down:
            return web.Response(status=503)
        form = await request.post()
        token = self.token(str(form.get("scope", "")), audience=[CUSTOMER_AUDIENCE, ORDER_AUDIENCE])
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        if self.down:
            return web.Response(status=503)
        return web.json_response({"keys": [self.jwk(kid) for kid in self.published]})

    def jwk(self, kid: str) -> dict:
        algorithm, key = self.published[kid]
        jwk = jwt.get_algorithm_by_name(algorithm).to_jwk(key.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}

    def claims(self, scope: str = "", audience: str | list[str] = CUSTOMER_AUDIENCE, **more) -> dict:
        now = int(time.time())
        return {"iss": self.url, "sub": "tester", "aud": audience, "exp": now + 300, "iat": now, "scope": scope, **more}

    def sign(self, claims: dict, kid: str | None = None, algorithm: str = "RS256", key=None) -> str:
        kid = kid or (self.rsa_kid if algorithm == "RS256" else self.ec_kid)
        key = key or (self.rsa if algorithm == "RS256" else self.ec)
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def token(self, scope: str = "", audience: str | list[str] = CUSTOMER_AUDIENCE, **more) -> str:
        return self.sign(self.claims(scope, audience, **more))

    def add_key(self) -> str:
        """A new RSA key, published from the next fetch on."""
        kid = uuid.uuid4().hex[:8]
        self.published[kid] = ("RS256", rsa.generate_private_key(65537, 2048))
        return kid

    def sign_with(self, kid: str, claims: dict) -> str:
        algorithm, key = self.published[kid]
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def unsigned(self, claims: dict) -> str:
        """`alg: none`: what a forger sends hoping the verifier skips the signature."""
        header = {"alg": "none", "typ": "JWT", "kid": self.rsa_kid}
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."

    def hs256_with_public_key(self, claims: dict) -> str:
        """The classic confusion: HS256 keyed with the RSA public key, which anyone can fetch."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.rsa_kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        public = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"
