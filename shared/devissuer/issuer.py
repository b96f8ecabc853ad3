"""The issuer: its clients, its signing keys (rotated on demand) and the tokens it signs."""

import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

log = logging.getLogger("devissuer")

DEFAULT_LIFETIME = 900  # seconds
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
