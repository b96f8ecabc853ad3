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
from shared.db import asyncpg_dsn, database_name, drop_database, with_database
from shared.testing.plugin import ROOT, SERVER_URL, unique


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
def own_role_database(test_run):
    """A role and database that `manage migrate` must create itself; both dropped afterwards."""
    role, name = f"svc_{test_run.id}_{unique('r')[-6:]}", f"own_{test_run.id}_{unique('d')[-6:]}"
    yield role, name, f"postgres://{role}@127.0.0.1:5432/{name}"

    async def drop():
        admin = await asyncpg.connect(asyncpg_dsn(SERVER_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()

    asyncio.run(drop())


def test_migrate_creates_the_service_role_owning_only_its_database(own_role_database, test_run):
    role, name, url = own_role_database
    result = subprocess.run(
        [sys.executable, "-m", "customer.manage", "migrate"],
        cwd=ROOT,
        timeout=60,
        capture_output=True,
        text=True,
        env={**os.environ, "CUSTOMER_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"created role {role}" in result.stdout and f"created database {name}" in result.stdout

    async def check():
        admin = await asyncpg.connect(asyncpg_dsn(SERVER_URL))
        try:
            owner = await admin.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name)
            powers = await admin.fetchrow(
                "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1", role
            )
        finally:
            await admin.close()
        assert owner == role and not any(powers)
        service = await asyncpg.connect(asyncpg_dsn(url))  # the service's own role runs its own database
        try:
            assert await service.fetchval("SELECT count(*) FROM customers") == 0
        finally:
            await service.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # and cannot even connect to another's
            await asyncpg.connect(asyncpg_dsn(with_database(url, database_name(test_run.order_db))))

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
    for file in files:
        shutil.copy(file, steps / service_db.app / file.name)
        assert run(manage.migrate(stepwise, db_url)) == [file.name]
        after = run(schema(db_url))
        assert after != before, f"{file.name} changed nothing"
        assert run(manage.downgrade(stepwise, db_url)) == [file.name]
        assert run(schema(db_url)) == before, f"{file.name}: the downgrade does not restore the schema"
        assert run(manage.migrate(stepwise, db_url)) == [file.name]
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
