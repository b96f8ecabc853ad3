"""Check that PostgreSQL and RabbitMQ answer before anything starts, and say how to fix it if not.

    python infra/scripts/preflight.py     exit 0 when both answer, 1 (with what to do) when one does not
"""

import asyncio
import logging
import sys
from urllib.parse import urlsplit

import asyncpg

from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.amqp import connect_first
from shared.broker_urls import broker_urls
from shared.db import asyncpg_dsn
from shared.settings import SharedSettings

TIMEOUT = 3.0
HOW_TO_START = {
    "PostgreSQL": "start it (Debian: `pg_ctlcluster 15 main start`; containers: `docker compose up -d postgres`) "
    "or point {vars} at a running server",
    "RabbitMQ": "start it (`rabbitmq-server -detached`; containers: `docker compose up -d rabbitmq`) "
    "or point AMQP_URL at a running broker",
}


def redact(url: str) -> str:
    """The URL (or comma-separated URLs) with any password masked."""
    if "," in url:
        return ",".join(redact(one) for one in url.split(","))
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2 and ":" in netloc[0]:
        return url.replace(netloc[0], netloc[0].split(":")[0] + ":***", 1)
    return url


async def postgres_problem(db_url: str) -> str | None:
    try:
        conn = await asyncpg.connect(asyncpg_dsn(db_url), timeout=TIMEOUT)
        await conn.close()
    except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError):
        return None  # the server answers; the role or database is missing, and `prepare` creates them
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def rabbitmq_problem(amqp_url: str) -> str | None:
    try:
        connection = await connect_first(broker_urls(amqp_url), TIMEOUT)
        await connection.close()
    except Exception as exc:  # aiormq raises several unrelated types for an unreachable broker
        return f"{type(exc).__name__}: {exc}"
    return None


async def check() -> list[str]:
    targets = [
        ("PostgreSQL", "CUSTOMER_DATABASE_URL", CustomerSettings().database_url, postgres_problem),
        ("PostgreSQL", "ORDER_DATABASE_URL", OrderSettings().database_url, postgres_problem),
        ("RabbitMQ", "AMQP_URL", SharedSettings().amqp_url, rabbitmq_problem),
    ]
    results = await asyncio.gather(*(probe(url) for _, _, url, probe in targets))
    failures = []
    for (name, var, url, _), problem in zip(targets, results, strict=True):
        if problem:
            how = HOW_TO_START[name].format(vars=var)
            failures.append(f"{name} is not reachable at {redact(url)} ({var}): {problem}\n  -> {how}")
    return failures


def main() -> int:
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # its own connect-error line would repeat ours
    failures = asyncio.run(check())
    for failure in failures:
        print(f"preflight: {failure}", file=sys.stderr)
    if not failures:
        print("preflight: PostgreSQL and RabbitMQ are reachable")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
