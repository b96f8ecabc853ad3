"""TLS where the services connect out: a server certificate that fails verification is said to be one.

The URLs carry the TLS settings (docs/operations.md, "Encryption in transit"): libpq's `sslmode`,
`sslrootcert`, ... in a PostgreSQL URL (shared/db.py), `amqps://` with aiormq's `cafile`, ... in AMQP_URL.
A certificate signed by another CA, or naming another host, is a configuration error, not an outage: the
gunicorn master checks once at start, before any worker, and refuses to start with one line.
"""

import asyncio
import ssl
from urllib.parse import parse_qsl, urlsplit

import aiormq
import asyncpg
from pydantic_settings import BaseSettings

from shared.broker_urls import broker_urls, where
from shared.db import asyncpg_dsn
from shared.problems import exception_chain

POSTGRES_FIX = (
    "set sslrootcert in {variable} to the CA that signed the server's certificate, and name the host it names"
)
RABBITMQ_FIX = "set cafile= in {variable} to the CA that signed the broker's certificate, and name the host it names"
VERIFYING = ("verify-ca", "verify-full")
# The settings fields a running service connects with (not the migration or admin URLs: `manage` checks those).
SERVICE_CONNECTIONS = ("database_url", "listen_url", "amqp_url")


def certificate_failure(exc: BaseException) -> str | None:
    """Why a server's certificate failed verification, if that is what `exc` is; else None."""
    for cause in exception_chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message or cause.reason}"
    text = str(exc)  # shared.amqp.connect_first folds each broker's failure into one ConnectionError's text
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate verify failed: " + text.split("certificate verify failed: ", 1)[-1].split(" (_ssl")[0]
    return None


def postgres_verifies(db_url: str) -> bool:
    """True if the URL asks to verify the server's certificate (libpq: verify-ca, verify-full, or require
    with an sslrootcert)."""
    query = dict(parse_qsl(urlsplit(db_url).query))
    mode = query.get("sslmode")
    return mode in VERIFYING or (mode == "require" and "sslrootcert" in query)


async def _postgres_certificate(db_url: str) -> str | None:
    try:
        await (await asyncpg.connect(asyncpg_dsn(db_url), timeout=5)).close()
    except Exception as exc:  # anything but a certificate failure is the workers' to meet (and report)
        return certificate_failure(exc)
    return None


async def _broker_certificate(url: str) -> str | None:
    try:
        async with asyncio.timeout(5):
            await (await aiormq.connect(url)).close()
    except Exception as exc:  # a broker that is down is not a reason to refuse: the services reconnect
        return certificate_failure(exc)
    return None


async def certificate_problems(settings: BaseSettings) -> list[str]:
    """One line per URL of `settings` whose server's certificate fails verification."""
    checks = []
    for field, info in type(settings).model_fields.items():
        variable, value = str(info.validation_alias or field.upper()), getattr(settings, field)
        if field not in SERVICE_CONNECTIONS or not value:
            continue
        if value.startswith(("postgres://", "postgresql://", "asyncpg://")) and postgres_verifies(value):
            checks.append(
                (f"PostgreSQL at {where(value)} ({variable})", POSTGRES_FIX, variable, _postgres_certificate(value))
            )
        elif value.startswith("amqps://"):
            for url in broker_urls(value):
                if url.startswith("amqps://"):
                    checks.append(
                        (f"RabbitMQ at {where(url)} ({variable})", RABBITMQ_FIX, variable, _broker_certificate(url))
                    )
    found = await asyncio.gather(*(check for *_, check in checks))
    return [
        f"{what}: {failure} -> {fix.format(variable=variable)} (docs/operations.md#encryption-in-transit)"
        for (what, fix, variable, _), failure in zip(checks, found, strict=True)
        if failure
    ]
