"""Migrations: every service's models agree with its aerich migrations, and a fresh database boots."""

import subprocess
import sys

import pytest

from shared.testing.plugin import ROOT


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
