"""Operator tools for the customer service's events and counts (also the console script `customer-ops`).

    python -m customer.ops dead-letters [--limit N]         list dead letters with their reasons (leaves them)
    python -m customer.ops replay-dead-letters [--limit N]  send dead letters back to the work queue, after a fix
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
from pamqp.commands import Basic

from customer.db_config import customer_orm_config
from customer.redelivery import (
    ATTEMPT_HEADER,
    KIND_HEADER,
    LAST_ERROR_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
)
from customer.repository import count_customers, orders_counts_page
from customer.settings import CustomerSettings
from shared.amqp import PERSISTENT, broker_user, connect_first
from shared.broker_urls import broker_urls
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
from shared.events import ORDER_CREATED

DEFAULT_ORDER_SERVICE_URL = "http://127.0.0.1:3001"
RECONCILE_PAGE = 200  # customers compared at a time: at most the order service's MAX_COUNTED_CUSTOMERS

# What the dead-lettering added (a replay starts afresh, its retries too).
NOT_REPLAYED_HEADERS = frozenset(
    {
        REASON_HEADER,
        KIND_HEADER,
        ATTEMPT_HEADER,
        LAST_ERROR_HEADER,
        "x-death",
        "x-first-death-reason",
        "x-first-death-queue",
        "x-first-death-exchange",
        "x-last-death-reason",
        "x-last-death-queue",
        "x-last-death-exchange",
    }
)


def original_routing_key(message) -> str:
    headers = message.header.properties.headers or {}
    return str(headers.get(ORIGINAL_ROUTING_KEY_HEADER) or ORDER_CREATED)


async def take_dead_letters(channel, settings: CustomerSettings, limit: int) -> list:
    """Up to `limit` dead letters, unacknowledged: closing the channel puts back whatever is not acked."""
    messages: list = []
    while len(messages) < limit:
        message = await channel.basic_get(settings.dead_letter_queue, no_ack=False)
        if message.delivery_tag is None:
            break
        messages.append(message)
    return messages


async def list_dead_letters(settings: CustomerSettings, limit: int) -> int:
    connection = await connect_first(broker_urls(settings.amqp_url))
    try:
        channel = await connection.channel()
        messages = await take_dead_letters(channel, settings, limit)
        for message in messages:
            headers = message.header.properties.headers or {}
            reason = headers.get(REASON_HEADER) or f"broker: {headers.get('x-first-death-reason', 'unknown')}"
            print(
                f"{message.header.properties.message_id}\t{original_routing_key(message)}\t{reason}\t"
                f"{message.body[:200].decode(errors='replace')}"
            )
        print(f"{len(messages)} dead letter(s) shown", file=sys.stderr)
    finally:
        await connection.close()  # unacked: they stay in the dead-letter queue
    return 0


async def replay_dead_letters(settings: CustomerSettings, limit: int, untrusted: bool = False) -> int:
    """Send dead letters back to the work queue. Those of an untrusted sender stay unless `untrusted`:
    the replay vouches for them with the customer service's own user_id, which its consumer believes."""
    connection = await connect_first(broker_urls(settings.amqp_url))
    replayed = kept = 0
    try:
        channel = await connection.channel()
        messages = await take_dead_letters(channel, settings, limit)
        progress = Progress("replayed", len(messages))
        for message in messages:
            properties = message.header.properties
            if (properties.headers or {}).get(KIND_HEADER) == "untrusted_sender" and not untrusted:
                kept += 1  # unacked: back on the dead-letter queue when the connection closes
                continue
            headers = {k: v for k, v in (properties.headers or {}).items() if k not in NOT_REPLAYED_HEADERS}
            # Straight back to the work queue, through the retry exchange as the consumer's requeues go: the
            # customer service may publish there (not to `orders`), and other listeners get no second copy.
            confirmation = await channel.basic_publish(
                message.body,
                exchange=settings.retry_exchange,
                routing_key=settings.orders_queue,
                properties=Basic.Properties(
                    content_type=properties.content_type,
                    delivery_mode=PERSISTENT,
                    message_id=properties.message_id,
                    # The customer service vouches for what it replays (its consumer trusts its own user).
                    user_id=broker_user(channel),
                    headers=headers,
                ),
            )
            if not isinstance(confirmation, Basic.Ack):
                print(f"broker refused {properties.message_id}; stopping", file=sys.stderr)
                break
            await channel.basic_ack(message.delivery_tag)  # only once the copy is safely published
            replayed += 1
            progress.advance()
    finally:
        await connection.close()
    print(f"{replayed} dead letter(s) replayed")
    if kept:
        print(f"{kept} from an untrusted sender left in place (--untrusted replays them too)", file=sys.stderr)
    return 0


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
                try:
                    async with session.get("/orders/counts", params=[("customer_id", cid) for cid, _ in page]) as r:
                        if r.status in (401, 403):
                            print(
                                f"the order service refused the token ({r.status}): give one with orders:read "
                                "(--token or ORDER_SERVICE_TOKEN; docs/auth.md)",
                                file=sys.stderr,
                            )
                            return 2
                        r.raise_for_status()
                        held = (await r.json())["counts"]
                except (aiohttp.ClientError, TimeoutError) as exc:
                    print(
                        f"the order service did not answer at {redact(order_service_url)} (ORDER_SERVICE_URL): "
                        f"{type(exc).__name__}: {exc} -> start it or point ORDER_SERVICE_URL at it; "
                        f"{checked} customer(s) checked",
                        file=sys.stderr,
                    )
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


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("customer.ops", __doc__)
    commands = subcommands(parser)
    for name, text in (
        ("dead-letters", "list dead letters with their reasons; they stay in the queue"),
        ("replay-dead-letters", "send dead letters back to the work queue, once the cause is fixed"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
        if name == "replay-dead-letters":
            sub.add_argument(
                "--untrusted",
                action="store_true",
                help="also those of an untrusted sender (an order service of an older version, once checked)",
            )
        add_verbose(sub, sub=True)
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
    parser = _parser()
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
        broker = Target(
            RABBITMQ,
            "AMQP_URL",
            settings.amqp_url,
            setup=f"start the customer service once (it declares {settings.dead_letter_queue})",
        )
        with reaching(broker):
            if args.command == "dead-letters":
                return asyncio.run(list_dead_letters(settings, args.limit))
            return asyncio.run(replay_dead_letters(settings, args.limit, args.untrusted))

    return run_command(parser.prog, command, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
