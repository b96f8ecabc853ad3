"""Operator tools for the order service's outbox (also the console script `order-ops`).

    python -m order.ops outbox                    pending events and the age of the oldest
    python -m order.ops republish ORDER_ID ...    send orders' events again (the consumer ignores what it applied)

A database or URL problem is one line and exit code 1; `--verbose` adds the traceback.
"""

import asyncio
import sys
from datetime import timedelta

from tortoise import Tortoise
from tortoise.timezone import now

from order import events, repository
from order.db_config import order_orm_config
from order.domain import INITIAL_STATUS
from order.outbox import store
from order.settings import OrderSettings
from shared.cli import (
    POSTGRES,
    Progress,
    Target,
    add_json,
    add_verbose,
    command_parser,
    load_settings,
    print_json,
    reaching,
    run_command,
    subcommands,
)

# The customer service's default deduplication window (PROCESSED_EVENTS_RETENTION_HOURS): it refuses,
# as stale, a copy of an event older than its window, so a republish that old counts nothing.
DEFAULT_DEDUP_WINDOW = timedelta(days=7)


async def show_outbox(as_json: bool = False) -> int:
    pending, oldest = await store.backlog()
    if as_json:  # the names of its metrics, outbox_pending_events and outbox_oldest_pending_seconds
        print_json({"pending_events": pending, "oldest_pending_seconds": round(oldest, 3)})
    else:
        print(f"pending events: {pending}; oldest waiting: {oldest:.1f}s")
    return 0


async def republish(order_id: int) -> int:
    """Write the order's `order.created` to the outbox again, unless it is still pending there.

    The event id and payload are the ones first published (see order.events), so a customer
    service that applied it before changes nothing.
    """
    order = await repository.get_order(order_id)
    if order is None:
        print(f"order {order_id} does not exist", file=sys.stderr)
        return 1
    if await store.has_pending_events(order_id):
        print(f"order {order_id}: its events are still in the outbox, waiting for the broker")
        return 0
    if order.created_at < now() - DEFAULT_DEDUP_WINDOW:
        print(
            f"order {order_id}: created {order.created_at:%Y-%m-%d}, before the customer service's default "
            f"deduplication window of {DEFAULT_DEDUP_WINDOW.days} days; its consumer dead-letters it as stale "
            "unless PROCESSED_EVENTS_RETENTION_HOURS there is longer",
            file=sys.stderr,
        )
    order.status = INITIAL_STATUS  # the event as it was at creation: same payload, same id
    await store.add_event(events.order_created(order, request_id="republish"))
    print(f"order {order_id}: order.created queued for publishing again")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("order.ops", __doc__)
    commands = subcommands(parser)
    text = "pending events and the oldest one's age"
    outbox_parser = commands.add_parser("outbox", help=text, description=text)
    add_json(outbox_parser)
    add_verbose(outbox_parser, sub=True)
    text = "send orders' events again; the customer service ignores what it has applied"
    republish_parser = commands.add_parser("republish", help=text, description=text)
    republish_parser.add_argument("order_ids", type=int, nargs="+", metavar="ORDER_ID")
    add_verbose(republish_parser, sub=True)
    args = parser.parse_args(argv)

    async def run(db_url: str) -> int:
        await Tortoise.init(config=order_orm_config(db_url))
        try:
            if args.command == "outbox":
                return await show_outbox(args.json)
            failed = 0
            progress = Progress("republish", len(args.order_ids)) if len(args.order_ids) > 1 else None
            for order_id in args.order_ids:
                failed += await republish(order_id) != 0
                if progress:
                    progress.advance()
            return 1 if failed else 0
        finally:
            await Tortoise.close_connections()

    def command() -> int:
        db_url = load_settings(OrderSettings).database_url
        with reaching(Target(POSTGRES, "ORDER_DATABASE_URL", db_url, setup="python -m order.manage migrate")):
            return asyncio.run(run(db_url))

    return run_command(parser.prog, command, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
