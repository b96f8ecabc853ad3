"""Operator tools for the order service's outbox.

    python -m order.ops outbox               pending events and the age of the oldest
    python -m order.ops republish ORDER_ID   send an order's events again (the consumer ignores what it applied)
"""

import argparse
import asyncio
import sys

from tortoise import Tortoise
from tortoise.connection import get_connection

from order import events
from order.db_config import APP, order_orm_config
from order.models import Order, OutboxEvent
from order.outbox import BACKLOG
from order.settings import OrderSettings


async def show_outbox() -> int:
    _, rows = await get_connection(APP).execute_query(BACKLOG)
    pending, oldest = rows[0][0], rows[0][1]
    print(f"pending events: {pending}; oldest waiting: {float(oldest or 0):.1f}s")
    return 0


async def republish(order_id: int) -> int:
    """Mark the order's outbox rows unsent; rows already purged get `order.created` written again.

    The event ids are the ones first published (see order.events), so a customer
    service that applied them before changes nothing.
    """
    order = await Order.get_or_none(id=order_id)
    if order is None:
        print(f"order {order_id} does not exist", file=sys.stderr)
        return 1
    reset = await OutboxEvent.filter(order_id=order_id).update(sent_at=None)
    if not reset:
        order.status = "created"  # the event as it was at creation: same payload, same id
        await events.order_created(order, request_id="republish").save()
        reset = 1
    print(f"order {order_id}: {reset} event(s) queued for publishing again")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m order.ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("outbox", help="pending events and the oldest one's age")
    republish_parser = commands.add_parser("republish", help="send an order's events again")
    republish_parser.add_argument("order_id", type=int)
    args = parser.parse_args(argv)

    async def run() -> int:
        await Tortoise.init(config=order_orm_config(OrderSettings().database_url))
        try:
            if args.command == "outbox":
                return await show_outbox()
            return await republish(args.order_id)
        finally:
            await Tortoise.close_connections()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
