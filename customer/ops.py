"""Operator tools for the customer service's events and counts.

    python -m customer.ops dead-letters [--limit N]         list dead letters with their reasons (leaves them)
    python -m customer.ops replay-dead-letters [--limit N]  send dead letters back through the exchange, after a fix
    python -m customer.ops reconcile [--customer ID ...]    compare orders_count with the order service; exit 1 on
                                                            drift, 2 when the order service does not answer
"""

import argparse
import asyncio
import sys

import aiohttp
import asyncpg
from pamqp.commands import Basic

from customer.consumer import ATTEMPT_HEADER, REASON_HEADER
from customer.settings import CustomerSettings
from shared.amqp import PERSISTENT, connect_first
from shared.broker_urls import broker_urls
from shared.db import asyncpg_dsn
from shared.events import ORDER_CREATED

# What the dead-lettering added (a replay starts afresh, its retries too).
NOT_REPLAYED_HEADERS = frozenset({
    REASON_HEADER, ATTEMPT_HEADER, "x-last-error", "x-death", "x-first-death-reason", "x-first-death-queue",
    "x-first-death-exchange", "x-last-death-reason", "x-last-death-queue", "x-last-death-exchange",
})


def original_routing_key(message) -> str:
    headers = message.header.properties.headers or {}
    return str(headers.get("x-original-routing-key") or ORDER_CREATED)


async def take_dead_letters(channel, settings: CustomerSettings, limit: int) -> list:
    """Up to `limit` dead letters, unacknowledged: closing the channel puts back whatever is not acked."""
    messages = []
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
            print(f"{message.header.properties.message_id}\t{original_routing_key(message)}\t{reason}\t"
                  f"{message.body[:200].decode(errors='replace')}")
        print(f"{len(messages)} dead letter(s) shown", file=sys.stderr)
    finally:
        await connection.close()  # unacked: they stay in the dead-letter queue
    return 0


async def replay_dead_letters(settings: CustomerSettings, limit: int) -> int:
    connection = await connect_first(broker_urls(settings.amqp_url))
    replayed = 0
    try:
        channel = await connection.channel()
        for message in await take_dead_letters(channel, settings, limit):
            properties = message.header.properties
            headers = {k: v for k, v in (properties.headers or {}).items() if k not in NOT_REPLAYED_HEADERS}
            confirmation = await channel.basic_publish(
                message.body, exchange=settings.events_exchange, routing_key=original_routing_key(message),
                properties=Basic.Properties(content_type=properties.content_type, delivery_mode=PERSISTENT,
                                            message_id=properties.message_id, headers=headers),
            )
            if not isinstance(confirmation, Basic.Ack):
                print(f"broker refused {properties.message_id}; stopping", file=sys.stderr)
                break
            await channel.basic_ack(message.delivery_tag)  # only once the copy is safely published
            replayed += 1
    finally:
        await connection.close()
    print(f"{replayed} dead letter(s) replayed")
    return 0


async def reconcile(settings: CustomerSettings, order_service_url: str, customer_ids: list[int] | None = None) -> int:
    """orders_count of every customer (or of those given) against the orders the order service holds for them."""
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    drift = 0
    try:
        customers = await conn.fetch(
            "SELECT id, orders_count FROM customers WHERE $1::int[] IS NULL OR id = ANY($1) ORDER BY id", customer_ids
        )
    finally:
        await conn.close()
    limit = asyncio.Semaphore(10)
    async with aiohttp.ClientSession(base_url=order_service_url) as session:
        async def held(customer_id: int) -> int:
            async with limit, session.get("/orders", params={"customer_id": customer_id, "limit": 1}) as response:
                response.raise_for_status()
                return (await response.json())["total"]

        try:
            totals = await asyncio.gather(*(held(row["id"]) for row in customers))
        except aiohttp.ClientError as exc:
            print(f"the order service at {order_service_url} did not answer ({exc}); nothing was checked",
                  file=sys.stderr)
            return 2
    for row, total in zip(customers, totals, strict=True):
        if row["orders_count"] != total:
            drift += 1
            print(f"customer {row['id']}: orders_count {row['orders_count']}, order service holds {total}")
    print(f"{len(customers)} customer(s) checked, {drift} with drift")
    return 1 if drift else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer.ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("dead-letters", "replay-dead-letters"):
        commands.add_parser(name).add_argument("--limit", type=int, default=100)
    reconcile_parser = commands.add_parser("reconcile")
    reconcile_parser.add_argument("--order-service-url", default="http://127.0.0.1:3001", help="default: %(default)s")
    reconcile_parser.add_argument("--customer", type=int, action="append", help="only this customer (repeatable)")
    args = parser.parse_args(argv)
    settings = CustomerSettings()
    if args.command == "dead-letters":
        return asyncio.run(list_dead_letters(settings, args.limit))
    if args.command == "replay-dead-letters":
        return asyncio.run(replay_dead_letters(settings, args.limit))
    return asyncio.run(reconcile(settings, args.order_service_url, args.customer))


if __name__ == "__main__":
    sys.exit(main())
