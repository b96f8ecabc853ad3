"""Migrations: every service's models agree with its aerich migrations, and a fresh database boots."""

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from shared.db import asyncpg_dsn, database_name, with_database
from shared.testing.plugin import ROOT, SERVER_URL, unique


@pytest.mark.parametrize("service", ["customer", "order"])
def test_models_and_migrations_agree(service):
    result = subprocess.run([sys.executable, "-m", f"{service}.manage", "check-migrations"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
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
    result = subprocess.run([sys.executable, "-m", "customer.manage", "migrate"], cwd=ROOT, timeout=60,
                            capture_output=True, text=True, env={**os.environ, "CUSTOMER_DATABASE_URL": url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"created role {role}" in result.stdout and f"created database {name}" in result.stdout

    async def check():
        admin = await asyncpg.connect(asyncpg_dsn(SERVER_URL))
        try:
            owner = await admin.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name)
            powers = await admin.fetchrow("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                                          "WHERE rolname = $1", role)
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
