"""Database chores each service exposes as `python -m <service>.manage <command>` (or `<service>-manage`).

    migrate              create the database if missing and apply every aerich migration
    seed                 load the service's seed data (idempotent)
    prepare              migrate, then seed: what `make run` and the compose `migrate` services do
    history              every migration, marked applied or pending
    heads                the migrations not applied yet
    downgrade --yes [V]  undo migration V and every later one (default: the last one applied)
    makemigrations NAME  write a new migration for model changes (offline, no database needed)
    check-migrations     exit 1 if the models have changes no migration holds

aerich's own command line works too, one config per service: `aerich -c <service>/aerich.toml history`.
A database, broker or URL problem is one line and exit code 1; `--verbose` adds the traceback.
"""

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg
from aerich import Command
from aerich.exceptions import DowngradeError
from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient

from shared.cli import (
    POSTGRES,
    CommandError,
    Target,
    add_json,
    add_verbose,
    check_url,
    command_parser,
    load_settings,
    print_json,
    reaching,
    run_command,
    subcommands,
)
from shared.database_roles import (
    DatabaseRoles,
    for_runtime,
    grant_runtime,
    hand_queue_tables_to_runtime,
    provision,
    role_of,
    session_limits,
)
from shared.db import admin_url_for, asyncpg_dsn, orm_session, transaction
from shared.logs import configure_logging
from shared.settings import SharedSettings

log = logging.getLogger(__name__)


class ServiceSettings(Protocol):
    """What `manage` reads of a service's settings."""

    database_url: str
    database_statement_timeout: float
    database_lock_timeout: float
    database_idle_in_transaction_timeout: float

    @property
    def migration_database_url(self) -> str: ...


@dataclass(frozen=True)
class ServiceDb:
    app: str  # the Tortoise app label; also its migrations subfolder
    migrations: Path  # aerich's location; files live in migrations/<app>/
    db_variable: str  # the variable that holds db_url, for messages
    settings: Callable[[], ServiceSettings]
    orm_config: Callable[[str], dict]
    queue_tables: tuple[str, ...] = ()  # vacuumed by the service itself (shared/database_roles.py)
    seed: Callable[[BaseDBAsyncClient], Awaitable[int]] | None = None

    def roles(self, settings: ServiceSettings) -> DatabaseRoles:
        return DatabaseRoles(
            owner_url=settings.migration_database_url,
            runtime_url=settings.database_url,
            queue_tables=self.queue_tables,
            session_limits=session_limits(
                settings.database_statement_timeout,
                settings.database_lock_timeout,
                settings.database_idle_in_transaction_timeout,
            ),
        )

    def target(self, db_url: str) -> Target:
        return Target(POSTGRES, self.db_variable, db_url, setup=f"python -m {self.app}.manage migrate")

    def command(self, db_url: str, location: Path | None = None) -> Command:
        return Command(tortoise_config=self.orm_config(db_url), app=self.app, location=str(location or self.migrations))

    def advisory_lock_key(self) -> int:
        # Stable across processes (unlike hash()), so every instance serialises on the same key.
        return int.from_bytes(f"migrate:{self.app}".encode()[:8].ljust(8, b"\0"), "big", signed=True)


async def migrate(service: ServiceDb, roles: DatabaseRoles, admin_url: str | None = None) -> list[str]:
    """Provision the roles where they are not in place, apply the migrations as the owner, then grant the
    runtime role what it may use."""
    db_url = roles.owner_url
    admin = Target(POSTGRES, "POSTGRES_ADMIN_URL", admin_url or admin_url_for(db_url))
    with reaching(admin):  # used only where the roles are not in place: named in what goes wrong
        for done in await provision(roles, admin_url):
            print(f"{service.app}: {done}")
    with reaching(service.target(db_url)):
        # Several instances may start at once: concurrent aerich upgrades race, so take turns.
        lock_conn = await asyncpg.connect(asyncpg_dsn(db_url), timeout=5)
        try:
            await lock_conn.execute("SELECT pg_advisory_lock($1)", service.advisory_lock_key())
            command = service.command(db_url)
            await command.init()
            try:
                applied = await command.upgrade(run_in_transaction=True)
            finally:
                await Tortoise.close_connections()
            await grant_runtime(roles)
        finally:
            await lock_conn.close()
    with reaching(admin):
        for done in await hand_queue_tables_to_runtime(roles, admin_url):
            print(f"{service.app}: {done}")
    return applied


async def history(service: ServiceDb, db_url: str) -> list[tuple[str, bool]]:
    """Every migration file, in order, with whether the database has applied it."""
    with reaching(service.target(db_url)):
        command = service.command(db_url)
        await command.init()
        try:
            pending = set(await command.heads())
            return [(version, version not in pending) for version in await command.history()]
        finally:
            await Tortoise.close_connections()


async def downgrade(service: ServiceDb, db_url: str, version: int = -1) -> list[str]:
    """Undo `version` and every later migration (-1: the last one applied); the files stay."""
    with reaching(service.target(db_url)):
        command = service.command(db_url)
        await command.init()
        try:
            return await command.downgrade(version, delete=False)
        except DowngradeError as exc:
            raise CommandError(f"{service.app}: cannot downgrade: {exc}") from exc
        finally:
            await Tortoise.close_connections()


async def seed(service: ServiceDb, db_url: str) -> int:
    if service.seed is None:
        return 0
    with reaching(service.target(db_url)):
        async with orm_session(service.orm_config(db_url)), transaction(service.app) as conn:
            return await service.seed(conn)


async def make_migration(service: ServiceDb, name: str, location: Path | None = None) -> str:
    """Write a migration for what the models changed; '' when nothing did."""
    location = location or service.migrations
    command = service.command(service.settings().migration_database_url, location)
    try:
        if not any((location / service.app).glob("*.py")):
            await command.init_migrations(safe=True)
            return "initial"
        await command.init(offline=True)
        return await command.migrate(name, no_input=True, offline=True) or ""
    finally:
        await Tortoise.close_connections()


async def pending_model_changes(service: ServiceDb) -> str:
    """Run makemigrations on a copy of the migrations: a new file there means the models drifted."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "migrations"
        shutil.copytree(service.migrations, copy)
        return await make_migration(service, "check", copy)


COMMANDS = {
    "migrate": "create the role and database if missing (POSTGRES_ADMIN_URL), apply every migration",
    "seed": "load the seed data (idempotent)",
    "prepare": "migrate, then seed: what `make run` and the compose migrate services do",
    "history": "every migration, marked applied or pending",
    "heads": "the migrations not applied yet",
    "downgrade": "undo a migration and every later one (default: the last one applied)",
    "makemigrations": "write a migration for what the models changed (no database needed)",
    "check-migrations": "exit 1 if the models have changes no migration holds (no database needed)",
}


def parser_for(service: ServiceDb) -> argparse.ArgumentParser:
    parser = command_parser(f"{service.app}.manage", __doc__)
    commands = subcommands(parser)
    sub = {name: commands.add_parser(name, help=text, description=text) for name, text in COMMANDS.items()}
    add_json(sub["history"])
    add_json(sub["heads"])
    sub["makemigrations"].add_argument("name", nargs="?", default="update", help="migration name (default: update)")
    sub["downgrade"].add_argument(
        "version",
        nargs="?",
        type=int,
        default=-1,
        help="the number the migration's file starts with (default: the last applied)",
    )
    sub["downgrade"].add_argument(
        "--yes",
        action="store_true",
        required=True,
        help="confirm: the downgrade drops what those migrations made, data included",
    )
    for name in COMMANDS:
        add_verbose(sub[name], sub=True)
    return parser


def main(service: ServiceDb, argv: list[str] | None = None) -> int:
    parser = parser_for(service)
    args = parser.parse_args(argv)

    async def run(settings: ServiceSettings, admin_url: str | None) -> int:
        with reaching(service.target(settings.database_url)):
            roles = await for_runtime(requested := service.roles(settings))
        db_url = roles.owner_url  # what changes the schema or the sequences runs as the owner
        if args.command in ("migrate", "prepare"):
            applied = await migrate(service, roles, admin_url)
            print(f"{service.app}: applied {len(applied)} migration(s) {applied or ''}".rstrip())
            if roles != requested:
                runtime = role_of(roles.runtime_url)
                print(f"{service.app}: {runtime} is a superuser, so the service runs with no least privilege")
        if args.command in ("seed", "prepare"):
            print(f"{service.app}: seeded {await seed(service, db_url)} new row(s)")
        if args.command in ("history", "heads"):
            versions = await history(service, roles.runtime_url)
            shown = [(v, done) for v, done in versions if args.command == "history" or not done]
            if args.json:
                print_json([{"version": version, "applied": done} for version, done in shown])
                return 0
            for version, done in shown:
                print(f"{'applied' if done else 'pending'}\t{version}")
            if args.command == "heads" and not shown:
                print(f"{service.app}: every migration is applied", file=sys.stderr)
        if args.command == "downgrade":
            undone = await downgrade(service, db_url, args.version)
            print(f"{service.app}: undid {len(undone)} migration(s) {undone}")
        if args.command == "makemigrations":
            written = await make_migration(service, args.name)
            print(f"{service.app}: {'wrote migration ' + written if written else 'no changes detected'}")
        if args.command == "check-migrations":
            drift = await pending_model_changes(service)
            if drift:
                print(f"{service.app}: models have changes without a migration; run makemigrations")
                return 1
            print(f"{service.app}: models and migrations agree")
        return 0

    def command() -> int:
        shared = load_settings(SharedSettings)
        configure_logging(service.app, shared.log_level)
        settings = service.settings()
        check_url(service.target(settings.database_url))  # a malformed URL is named before anything connects
        return asyncio.run(run(settings, shared.postgres_admin_url))

    return run_command(parser.prog, command, args.verbose)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it through a service: python -m customer.manage ...")
