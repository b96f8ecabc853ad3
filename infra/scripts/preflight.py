"""Check that PostgreSQL and RabbitMQ answer before anything starts, and say how to fix it if not.

python infra/scripts/preflight.py     exit 0 when both answer, 1 (with what to do) when one does not
"""

import argparse
import asyncio
import contextlib
import sys

import asyncpg

from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.amqp import connect_first
from shared.broker_urls import broker_urls
from shared.cli import POSTGRES, RABBITMQ, CommandError, Target, add_verbose, load_settings, reaching, run_command
from shared.db import asyncpg_dsn

TIMEOUT = 3.0


async def postgres_answers(db_url: str) -> None:
    # A missing role or database means the server answers: `prepare` creates them.
    with contextlib.suppress(asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError):
        await (await asyncpg.connect(asyncpg_dsn(db_url), timeout=TIMEOUT)).close()


async def rabbitmq_answers(amqp_url: str) -> None:
    await (await connect_first(broker_urls(amqp_url), TIMEOUT)).close()


async def problem(target: Target) -> str | None:
    probe = postgres_answers if target.what == POSTGRES else rabbitmq_answers
    try:
        with reaching(target):
            await probe(target.url)
    except CommandError as exc:
        return str(exc)
    return None


async def check() -> list[str]:
    customer, order = load_settings(CustomerSettings), load_settings(OrderSettings)
    targets = [
        Target(POSTGRES, "CUSTOMER_DATABASE_URL", customer.database_url),
        Target(POSTGRES, "ORDER_DATABASE_URL", order.database_url),
        Target(RABBITMQ, "AMQP_URL", customer.amqp_url),
    ]
    return [failure for failure in await asyncio.gather(*map(problem, targets)) if failure]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="preflight", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_verbose(parser)
    args = parser.parse_args(argv)

    def command() -> int:
        failures = asyncio.run(check())
        for failure in failures:
            print(f"preflight: {failure}", file=sys.stderr)
        if not failures:
            print("preflight: PostgreSQL and RabbitMQ are reachable")
        return 1 if failures else 0

    return run_command("preflight", command, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
