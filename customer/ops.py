"""Operator tools for the customer service's events and counts (also the console script `customer-ops`).

    python -m customer.ops dead-letters [--reason-is R ...]  list dead letters (from the database; --json)
    python -m customer.ops dead-letter ID | dead-letter-groups  one dead letter; counts by reason and error
    python -m customer.ops replay-dead-letters [ID ...] --by WHO --reason WHY [--dry-run]
    python -m customer.ops edit-and-replay ID --body-file F --by WHO --reason WHY
    python -m customer.ops discard-dead-letters [ID ...] --by WHO --reason WHY [--dry-run]
    python -m customer.ops reconcile [--customer ID ...]    compare orders_count with the order service (at
                                                            ORDER_SERVICE_URL); exit 1 on drift, 2 when the
                                                            order service does not answer

A database, broker or URL problem is one line and exit code 1; `--verbose` adds the traceback.
"""

import argparse
import asyncio
import os
import sys
from urllib.parse import urlsplit

import aiohttp

from customer.db_config import customer_orm_config
from customer.dead_letters import cli as dead_letter_cli
from customer.repository import count_customers, orders_counts_page
from customer.settings import CustomerSettings
from shared.cli import (
    POSTGRES,
    RABBITMQ,
    CommandError,
    Progress,
    Target,
    add_json,
    add_verbose,
    command_parser,
    load_settings,
    print_json,
    reaching,
    redact,
    run_command,
    subcommands,
)
from shared.db import orm_session

DEFAULT_ORDER_SERVICE_URL = "http://127.0.0.1:3001"
RECONCILE_PAGE = 200  # customers compared at a time: at most the order service's MAX_COUNTED_CUSTOMERS


async def reconcile(
    settings: CustomerSettings,
    order_service_url: str,
    customer_ids: list[int] | None = None,
    token: str | None = None,
    as_json: bool = False,
) -> int:
    """orders_count of every customer (or of those given) against the orders the order service holds for them,
    a page of customers at a time: one read of the page here, one GET /orders/counts there (with `token`, a
    bearer token with orders:read, when the order service checks tokens). `as_json`: one document at the end,
    `{"checked": N, "drift": [{"customer_id", "orders_count", "orders_held"}]}`."""
    drift: list[dict] = []
    checked = 0
    async with orm_session(customer_orm_config(settings.database_url)):
        progress = Progress("reconcile", await count_customers(customer_ids))
        timeout = aiohttp.ClientTimeout(total=30)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with aiohttp.ClientSession(base_url=order_service_url, timeout=timeout, headers=headers) as session:
            after = 0
            while page := await orders_counts_page(after, RECONCILE_PAGE, customer_ids):
                held = await _held_counts(session, page, order_service_url, checked)
                if held is None:
                    return 2
                for customer_id, orders_count in page:
                    if orders_count != held[str(customer_id)]:
                        drift.append(
                            {
                                "customer_id": customer_id,
                                "orders_count": orders_count,
                                "orders_held": held[str(customer_id)],
                            }
                        )
                        if not as_json:
                            print(
                                f"customer {customer_id}: orders_count {orders_count}, "
                                f"order service holds {held[str(customer_id)]}"
                            )
                checked += len(page)
                after = page[-1][0]
                progress.advance(len(page))
    if as_json:
        print_json({"checked": checked, "drift": drift})
    else:
        print(f"{checked} customer(s) checked, {len(drift)} with drift")
    return 1 if drift else 0


async def _held_counts(
    session: aiohttp.ClientSession, page: list, order_service_url: str, checked: int
) -> dict[str, int] | None:
    """The order service's count for each customer of `page`; None (said on stderr) if it cannot tell."""
    try:
        async with session.get("/orders/counts", params=[("customer_id", cid) for cid, _ in page]) as r:
            if r.status in (401, 403):
                print(
                    f"the order service refused the token ({r.status}): give one with orders:read "
                    "(--token or ORDER_SERVICE_TOKEN; docs/auth.md)",
                    file=sys.stderr,
                )
                return None
            r.raise_for_status()
            return (await r.json())["counts"]
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(
            f"the order service did not answer at {redact(order_service_url)} (ORDER_SERVICE_URL): "
            f"{type(exc).__name__}: {exc} -> start it or point ORDER_SERVICE_URL at it; "
            f"{checked} customer(s) checked",
            file=sys.stderr,
        )
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("customer.ops", __doc__)
    commands = subcommands(parser)
    dead_letter_cli.add_commands(commands, add_verbose)
    text = (
        "compare each customer's orders_count with the orders the order service holds; "
        "exit 1 on drift, 2 when the order service does not answer"
    )
    reconcile_parser = commands.add_parser("reconcile", help=text, description=text)
    reconcile_parser.add_argument(
        "--order-service-url",
        default=os.environ.get("ORDER_SERVICE_URL", DEFAULT_ORDER_SERVICE_URL),
        help=f"default: ORDER_SERVICE_URL, else {DEFAULT_ORDER_SERVICE_URL}",
    )
    reconcile_parser.add_argument("--customer", type=int, action="append", help="only this customer (repeatable)")
    reconcile_parser.add_argument(
        "--token",
        default=os.environ.get("ORDER_SERVICE_TOKEN"),
        help="a bearer token with orders:read, when the order service checks tokens (default: ORDER_SERVICE_TOKEN)",
    )
    add_json(reconcile_parser)
    add_verbose(reconcile_parser, sub=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def command() -> int:
        settings = load_settings(CustomerSettings)
        if args.command == "reconcile":
            url = urlsplit(args.order_service_url)
            if url.scheme not in ("http", "https") or not url.hostname or url.path.strip("/"):
                raise CommandError(
                    f"ORDER_SERVICE_URL is not an http:// URL without a path: "
                    f"{redact(args.order_service_url)} -> use http://host:3001"
                )
            database = Target(
                POSTGRES, "CUSTOMER_DATABASE_URL", settings.database_url, setup="python -m customer.manage migrate"
            )
            with reaching(database):
                return asyncio.run(reconcile(settings, args.order_service_url, args.customer, args.token, args.json))
        database = Target(
            POSTGRES, "CUSTOMER_DATABASE_URL", settings.database_url, setup="python -m customer.manage migrate"
        )
        broker = Target(
            RABBITMQ,
            "AMQP_URL",
            settings.amqp_url,
            setup=f"start the customer service once (it declares {settings.dead_letter_queue})",
        )
        return asyncio.run(dead_letter_cli.run(args, settings, database, broker))

    return run_command(parser.prog, command, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
