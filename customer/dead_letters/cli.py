"""`customer.ops` commands on the dead letters (actions.py), from the database.

Listing, showing and grouping read the `dead_letters` table only: they need no broker and change
nothing. Replaying connects to the broker (with the customer service's AMQP_URL: the replay carries
its user). Every change names who made it (`--by`) and why (`--reason`), and is in the audit.
"""

import argparse
import contextlib
import getpass
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
from aiormq.abc import AbstractChannel
from pydantic import BaseModel, ValidationError

from customer.db_config import customer_orm_config
from customer.dead_letters import actions, repository
from customer.dead_letters.handlers import dead_letter_detail
from customer.dead_letters.schemas import BULK_MAX, DeadLetterFilter, DeadLetterOut, GroupOut
from customer.settings import CustomerSettings
from shared.amqp import connect_first
from shared.broker_urls import broker_urls
from shared.cli import CommandError, Target, add_json, reaching
from shared.db import orm_session
from shared.problems import AppError

COMMANDS = {
    "dead-letters": "list dead letters from the database, newest first (changes nothing, needs no broker)",
    "dead-letter": "show one dead letter: body, headers, history, audit",
    "dead-letter-groups": "count dead letters by reason and error",
    "replay-dead-letters": "replay dead letters (given ids, or a filter's worth) to the consumer's queue",
    "edit-and-replay": "replay one dead letter with an edited body (the event id stays)",
    "discard-dead-letters": "discard dead letters (given ids, or a filter's worth), saying why",
}
MUTATING = {"replay-dead-letters", "edit-and-replay", "discard-dead-letters"}


def add_commands(commands, add_verbose: Callable) -> None:
    for name, text in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        add_json(sub)
        if name in ("dead-letter", "edit-and-replay"):
            sub.add_argument("id", type=int)
        if name == "dead-letter":  # its body holds personal data
            sub.add_argument("--by", default=getpass.getuser(), help="who reads it (kept in the audit; default: you)")
        elif name in ("replay-dead-letters", "discard-dead-letters"):
            sub.add_argument("ids", type=int, nargs="*", metavar="ID", help="these; without any: the filter's worth")
        if name in ("dead-letters", "dead-letter-groups", "replay-dead-letters", "discard-dead-letters"):
            sub.add_argument("--reason-is", dest="f_reason", help="only this reason (kind), e.g. unknown_customer")
            sub.add_argument("--error", dest="f_error", help="only this exact error text (a group's)")
            sub.add_argument("--event-type", dest="f_event_type")
            sub.add_argument("--customer", dest="f_customer_id", type=int)
            sub.add_argument("--since", dest="f_since", help="last failed at or after (ISO 8601)")
            sub.add_argument("--until", dest="f_until", help="last failed before (ISO 8601)")
            sub.add_argument("--limit", type=int, default=100 if name == "dead-letters" else 1000)
        if name in ("dead-letters", "dead-letter-groups"):
            sub.add_argument("--state", dest="f_state", choices=["open", "replayed", "discarded"])
        if name in MUTATING:
            sub.add_argument("--by", required=True, help="who you are (kept in the audit)")
            sub.add_argument("--reason", required=True, help="why (kept in the audit)")
        if name in ("replay-dead-letters", "discard-dead-letters"):
            sub.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
        if name == "replay-dead-letters":
            sub.add_argument("--untrusted", action="store_true", help="also those of an untrusted sender, once checked")
        if name == "edit-and-replay":
            sub.add_argument("--body-file", required=True, type=Path, help="the edited event, JSON ('-': stdin)")
        add_verbose(sub, sub=True)


def _filters(args: argparse.Namespace) -> dict:
    given = {name[2:]: value for name, value in vars(args).items() if name.startswith("f_") and value is not None}
    try:
        return DeadLetterFilter.model_validate(given).model_dump()
    except ValidationError as exc:
        raise CommandError(f"invalid filter: {exc.errors(include_url=False)[0]['msg']}") from None


def _print(args: argparse.Namespace, value, text: Callable[[], None]) -> None:
    if args.json:
        data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        text()


@contextlib.asynccontextmanager
async def _broker(settings: CustomerSettings) -> AsyncIterator:
    connection = await connect_first(broker_urls(settings.amqp_url))
    try:
        yield await connection.channel()
    finally:
        await connection.close()


def needs_broker(args: argparse.Namespace) -> bool:
    return args.command in ("replay-dead-letters", "edit-and-replay") and not getattr(args, "dry_run", False)


async def run(args: argparse.Namespace, settings: CustomerSettings, database: Target, broker: Target) -> int:
    """The broker first (when the command replays), then the database, each failure named for its own."""
    async with contextlib.AsyncExitStack() as stack:
        channel = None
        if needs_broker(args):
            with reaching(broker):
                channel = await stack.enter_async_context(_broker(settings))
        with reaching(database):
            await stack.enter_async_context(orm_session(customer_orm_config(settings.database_url)))
            try:
                return await _run(args, settings, channel)
            except AppError as exc:  # not found, a conflict, an invalid edit: what the API would answer
                print(f"{exc.title}: {exc}", file=sys.stderr)
                return 1
    raise AssertionError("unreachable")  # (mypy: the stack does not swallow exceptions)


async def _run(args: argparse.Namespace, settings: CustomerSettings, channel: AbstractChannel | None) -> int:
    command = args.command
    if command == "dead-letters":
        rows = [
            DeadLetterOut.model_validate(r)
            for r in await repository.list_dead_letters(_filters(args), args.limit, 0, None)
        ]
        _print(args, [row.model_dump(mode="json") for row in rows], lambda: _print_rows(rows))
    elif command == "dead-letter":
        detail = await dead_letter_detail(args.id, args.by)
        _print(args, detail, lambda: print(detail.model_dump_json(indent=2)))
    elif command == "dead-letter-groups":
        groups = [GroupOut.model_validate(g) for g in await repository.groups(_filters(args))]
        _print(args, [g.model_dump(mode="json") for g in groups], lambda: _print_groups(groups))
    elif command == "edit-and-replay":
        text = sys.stdin.read() if str(args.body_file) == "-" else args.body_file.read_text()
        try:
            edited = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"the edited body is not JSON: {exc}") from None
        done = await actions.replay(channel, settings, args.id, args.by, args.reason, edited)
        _print(args, done, lambda: print(f"{done.key}: edited and replayed"))
    elif args.ids:
        return await _each(args, settings, channel)
    else:
        action = "replay" if command == "replay-dead-letters" else "discard"
        limit = min(args.limit, BULK_MAX)
        filters = _filters(args)
        untrusted = getattr(args, "untrusted", False)
        result = await actions.bulk(
            action, channel, settings, filters, args.by, args.reason, args.dry_run, limit, untrusted
        )
        would = "would be " if args.dry_run else ""
        _print(
            args,
            result,
            lambda: print(
                f"{len(result.done)} {would}{action}ed, {len(result.skipped)} skipped (untrusted sender; "
                f"--untrusted), {len(result.failed)} failed, of {result.matched} matched"
            ),
        )
        return 1 if result.failed else 0
    return 0


async def _each(args: argparse.Namespace, settings: CustomerSettings, channel: AbstractChannel | None) -> int:
    results = []
    for dead_letter_id in args.ids:
        if args.dry_run:
            results.append({"id": dead_letter_id, "dry_run": True})
        elif args.command == "replay-dead-letters":
            done = await actions.replay(channel, settings, dead_letter_id, args.by, args.reason, None, args.untrusted)
            results.append(done.model_dump(mode="json"))
        else:
            results.append((await actions.discard(dead_letter_id, args.by, args.reason)).model_dump(mode="json"))
    _print(
        args,
        results,
        lambda: print("\n".join(f"{r.get('key', r['id'])}: {r.get('state', 'dry run')}" for r in results)),
    )
    return 0


def _print_rows(rows: list[DeadLetterOut]) -> None:
    for row in rows:
        print(
            f"{row.id}\t{row.key}\t{row.state}\t{row.reason}\t{row.attempts}\t"
            f"{row.last_failed_at:%Y-%m-%d %H:%M:%S}\t{row.error}"
        )
    print(f"{len(rows)} dead letter(s) shown", file=sys.stderr)


def _print_groups(groups: list[GroupOut]) -> None:
    for g in groups:
        print(
            f"{g.count}\t{g.reason}\t{g.first_failed_at:%Y-%m-%d %H:%M}\t{g.last_failed_at:%Y-%m-%d %H:%M}\t{g.error}"
        )
