"""Migrations: every service's models agree with its aerich migrations, and a fresh database boots."""

import asyncio
import dataclasses
import importlib
import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from shared import manage
from shared.database_roles import DatabaseRoles
from shared.db import asyncpg_dsn, database_name, drop_database, with_database
from shared.testing.plugin import unique
from shared.testing.runs import ROOT, SERVER_URL


@pytest.mark.parametrize("service", ["customer", "order"])
def test_models_and_migrations_agree(service):
    result = subprocess.run(
        [sys.executable, "-m", f"{service}.manage", "check-migrations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_apps_boot_on_databases_built_only_by_the_migrations(customer_client, order_client):
    # test_run built both databases with `manage migrate` alone (no generate_schemas): both apps answer ready.
    for client in (customer_client, order_client):
        response = await client.get("/ready")
        assert response.status == 200, await response.text()


@pytest.fixture
def own_roles(test_run):
    """An owner role, a runtime role and a database that `manage migrate` must make itself; all dropped after."""
    suffix = unique("r")[-6:]
    owner, runtime, name = f"own_{test_run.id}_{suffix}", f"svc_{test_run.id}_{suffix}", f"db_{test_run.id}_{suffix}"
    yield owner, runtime, name

    async def drop():
        admin = await asyncpg.connect(asyncpg_dsn(SERVER_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{owner}"')
            await admin.execute(f'DROP ROLE IF EXISTS "{runtime}"')
        finally:
            await admin.close()

    asyncio.run(drop())


def customer_migrate(runtime: str, owner: str, name: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "customer.manage", "migrate"],
        cwd=ROOT,
        timeout=60,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "CUSTOMER_DATABASE_URL": f"postgres://{runtime}@127.0.0.1:5432/{name}",
            "CUSTOMER_MIGRATION_DATABASE_URL": f"postgres://{owner}@127.0.0.1:5432/{name}",
            **env,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


CHANGES_OF_SCHEMA = [
    "CREATE TABLE intruder (a int)",
    "DROP TABLE customers",
    "ALTER TABLE customers ADD COLUMN intruder int",
    "TRUNCATE customers",
]


def test_migrate_makes_an_owner_and_a_runtime_role_that_may_change_rows_only(own_roles, test_run):
    owner, runtime, name = own_roles
    output = customer_migrate(runtime, owner, name, DATABASE_STATEMENT_TIMEOUT="0.5")
    for made in (f"role {owner}", f"role {runtime}", f"database {name}"):
        assert made in output, output
    runtime_url = f"postgres://{runtime}@127.0.0.1:5432/{name}"

    async def check():
        admin = await asyncpg.connect(asyncpg_dsn(SERVER_URL))
        try:
            database_owner = await admin.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name
            )
            powers = await admin.fetch(
                "SELECT rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = ANY($1)",
                [owner, runtime],
            )
        finally:
            await admin.close()
        assert database_owner == owner and [row[0] for row in powers] == [False, False]
        service = await asyncpg.connect(asyncpg_dsn(runtime_url))
        try:
            await service.execute(
                "INSERT INTO customers (name, address, orders_count, created_at, updated_at) "
                "VALUES ('Ada', 'London', 0, now(), now())"
            )
            assert await service.fetchval("DELETE FROM customers RETURNING 1") == 1
            for statement in CHANGES_OF_SCHEMA:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await service.execute(statement)
            with pytest.raises(asyncpg.QueryCanceledError):  # the database's statement_timeout
                await service.execute("SELECT pg_sleep(5)")
            assert await service.fetchval("SHOW lock_timeout") == "5s"
            # The queue table its housekeeping vacuums is its own, and nothing else is.
            owned = await service.fetch("SELECT tablename FROM pg_tables WHERE tableowner = current_user")
            assert [row["tablename"] for row in owned] == ["processed_events"]
        finally:
            await service.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # and it cannot even connect to another's
            await asyncpg.connect(asyncpg_dsn(with_database(runtime_url, database_name(test_run.order_db))))

    asyncio.run(check())
    assert customer_migrate(runtime, owner, name) == "customer: applied 0 migration(s)\n"  # in place: nothing to do


def test_migrate_moves_an_installation_whose_service_role_owned_everything(own_roles):
    owner, runtime, name = own_roles
    customer_migrate(runtime, runtime, name)  # as before: the service's role owns the database and the tables
    runtime_url = f"postgres://{runtime}@127.0.0.1:5432/{name}"

    async def add_a_customer():
        service = await asyncpg.connect(asyncpg_dsn(runtime_url))
        try:
            await service.execute(
                "INSERT INTO customers (name, address, orders_count, created_at, updated_at) "
                "VALUES ('Kept', 'Here', 0, now(), now())"
            )
        finally:
            await service.close()

    asyncio.run(add_a_customer())
    output = customer_migrate(runtime, owner, name)
    assert f"database {name} now owned by {owner}" in output and f"tables of {runtime} now owned by {owner}" in output

    async def check():
        service = await asyncpg.connect(asyncpg_dsn(runtime_url))
        try:
            assert await service.fetchval("SELECT name FROM customers") == "Kept"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await service.execute("DROP TABLE customers")
        finally:
            await service.close()

    asyncio.run(check())


# The schema as PostgreSQL sees it, but aerich's own table (it stays when the first migration is undone).
SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable
       || ' default=' || coalesce(column_default, '') FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name <> 'aerich'
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'aerich'
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 'aerich'::regclass
UNION ALL SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL SELECT 'comment ' || c.relname || ' ' || d.description FROM pg_description d
  JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
 WHERE c.relnamespace = 'public'::regnamespace
ORDER BY 1
"""


async def schema(db_url: str) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS aerich (id int)")  # so 'aerich'::regclass resolves
        return [row[0] for row in await conn.fetch(SCHEMA)]
    finally:
        await conn.close()


def walk_the_stairway(service: str, workdir: str, db_url: str) -> None:
    """Up, down, up, one migration at a time; in a process of its own (aerich's one model can belong
    to one Tortoise app per process), each step in a loop of its own, as each CLI call is a process."""
    service_db = importlib.import_module(f"{service}.manage").SERVICE_DB
    files = sorted((service_db.migrations / service_db.app).glob("*.py"), key=lambda f: int(f.name.split("_")[0]))
    assert len(files) >= 2
    steps = Path(workdir) / "migrations"
    (steps / service_db.app).mkdir(parents=True)
    stepwise = dataclasses.replace(service_db, migrations=steps)  # holds the migrations up to the current one
    run = asyncio.run
    before: list[str] = []
    roles = DatabaseRoles(owner_url=db_url, runtime_url=db_url, queue_tables=(), session_limits={})
    for file in files:
        shutil.copy(file, steps / service_db.app / file.name)
        assert run(manage.migrate(stepwise, roles)) == [file.name]
        after = run(schema(db_url))
        assert after != before, f"{file.name} changed nothing"
        assert run(manage.downgrade(stepwise, db_url)) == [file.name]
        assert run(schema(db_url)) == before, f"{file.name}: the downgrade does not restore the schema"
        assert run(manage.migrate(stepwise, roles)) == [file.name]
        assert run(schema(db_url)) == after, f"{file.name}: a second upgrade builds another schema"
        before = after


@pytest.mark.parametrize("service", ["customer", "order"])
def test_stairway_every_migration_upgrades_downgrades_and_upgrades_again(service, tmp_path):
    """On an empty database of its own: each migration's downgrade restores the schema before it, and
    upgrading again builds the same schema as the first time."""
    db_url = with_database(SERVER_URL, f"stairway_{service}_{unique('s')[-8:]}")
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(walk_the_stairway, service, str(tmp_path), db_url).result(timeout=120)
    finally:
        asyncio.run(drop_database(db_url))


@pytest.mark.parametrize(
    ("service", "variable"), [("customer", "CUSTOMER_DATABASE_URL"), ("order", "ORDER_DATABASE_URL")]
)
def test_aerichs_own_cli_works_per_service(service, variable, test_run):
    url = test_run.customer_db if service == "customer" else test_run.order_db
    files = sorted(path.name for path in (Path(ROOT) / service / "migrations" / service).glob("*.py"))
    aerich = Path(sys.executable).parent / "aerich"
    for command, expected in (("history", files), ("heads", ["No available heads."])):
        result = subprocess.run(
            [aerich, "-c", f"{service}/aerich.toml", command],
            cwd=ROOT,
            timeout=60,
            capture_output=True,
            text=True,
            env={**os.environ, variable: url},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert sorted(line for line in result.stdout.splitlines() if line.strip()) == sorted(expected)
