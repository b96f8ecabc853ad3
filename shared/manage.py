"""Database chores each service exposes as `python -m <service>.manage <command>`.

    migrate              create the database if missing and apply every aerich migration
    seed                 load the service's seed data (idempotent)
    prepare              migrate, then seed: what `make run` and the containers do before start
    makemigrations NAME  write a new migration for model changes (offline, no database needed)
    check-migrations     exit 1 if the models have changes no migration holds
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

import asyncpg
from aerich import Command
from tortoise import Tortoise

from shared.db import asyncpg_dsn, ensure_database
from shared.logs import configure_logging
from shared.settings import SharedSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceDb:
    app: str  # the Tortoise app label; also its migrations subfolder
    migrations: Path  # aerich's location; files live in migrations/<app>/
    db_url: Callable[[], str]
    orm_config: Callable[[str], dict]
    seed: Callable[[asyncpg.Connection], Awaitable[int]] | None = None

    def advisory_lock_key(self) -> int:
        # Stable across processes (unlike hash()), so every instance serialises on the same key.
        return int.from_bytes(f"migrate:{self.app}".encode()[:8].ljust(8, b"\0"), "big", signed=True)


async def migrate(service: ServiceDb, db_url: str, admin_url: str | None = None) -> list[str]:
    for created in await ensure_database(db_url, admin_url):
        print(f"{service.app}: created {created}")
    # Several instances may start at once: concurrent aerich upgrades race, so take turns.
    lock_conn = await asyncpg.connect(asyncpg_dsn(db_url), timeout=5)
    try:
        await lock_conn.execute("SELECT pg_advisory_lock($1)", service.advisory_lock_key())
        command = Command(tortoise_config=service.orm_config(db_url), app=service.app,
                          location=str(service.migrations))
        await command.init()
        try:
            return await command.upgrade(run_in_transaction=True)
        finally:
            await Tortoise.close_connections()
    finally:
        await lock_conn.close()


async def seed(service: ServiceDb, db_url: str) -> int:
    if service.seed is None:
        return 0
    conn = await asyncpg.connect(asyncpg_dsn(db_url), timeout=5)
    try:
        async with conn.transaction():
            return await service.seed(conn)
    finally:
        await conn.close()


async def make_migration(service: ServiceDb, name: str, location: Path | None = None) -> str:
    """Write a migration for what the models changed; '' when nothing did."""
    location = location or service.migrations
    command = Command(tortoise_config=service.orm_config(service.db_url()), app=service.app,
                      location=str(location))
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


def main(service: ServiceDb, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {service.app}.manage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["migrate", "seed", "prepare", "makemigrations", "check-migrations"])
    parser.add_argument("name", nargs="?", default="update", help="migration name (makemigrations)")
    args = parser.parse_args(argv)
    configure_logging(service.app, SharedSettings().log_level)
    db_url = service.db_url()

    async def run() -> int:
        if args.command in ("migrate", "prepare"):
            applied = await migrate(service, db_url, SharedSettings().postgres_admin_url)
            print(f"{service.app}: applied {len(applied)} migration(s) {applied or ''}".rstrip())
        if args.command in ("seed", "prepare"):
            print(f"{service.app}: seeded {await seed(service, db_url)} new row(s)")
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

    return asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it through a service: python -m customer.manage ...")
