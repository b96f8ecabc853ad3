"""The command lines as an operator meets them: the name they were called by, each subcommand listed once,
--version, and --json where the output is for a pipe."""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest

from customer import ops as customer_ops
from customer.models import Customer
from shared.db import use_app_orm
from shared.testing.api import create_customer
from shared.testing.plugin import eventually
from shared.testing.runs import ROOT

BIN = Path(sys.executable).parent
PYTHON = Path(sys.executable).name
SUBCOMMANDS = {
    "customer.manage": ["migrate", "seed", "prepare", "history", "heads", "downgrade", "makemigrations"],
    "order.manage": ["migrate", "seed", "prepare", "history", "heads", "downgrade", "check-migrations"],
    "customer.ops": ["dead-letters", "replay-dead-letters", "reconcile"],
    "order.ops": ["outbox", "republish"],
    "shared.devissuer": ["serve", "token", "rotate"],
}
SCRIPTS = {"customer.manage": "customer-manage", "order.manage": "order-manage", "customer.ops": "customer-ops"}
SCRIPTS |= {"order.ops": "order-ops"}


def run(*argv: str | Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(arg) for arg in argv], cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    """Every command line's --help and --version, as a console script and as `python -m`, run at once."""
    calls = {}
    for module in SUBCOMMANDS:
        calls[f"-m {module} --help"] = (sys.executable, "-m", module, "--help")
    calls["-m shared.devissuer --version"] = (sys.executable, "-m", "shared.devissuer", "--version")
    for script in SCRIPTS.values():
        calls[f"{script} --help"] = (BIN / script, "--help")
        calls[f"{script} --version"] = (BIN / script, "--version")
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(calls, pool.map(lambda argv: run(*argv), calls.values()), strict=True))


@pytest.mark.parametrize("module", SUBCOMMANDS)
def test_help_names_the_program_as_called_and_lists_each_subcommand_once(module, helps):
    called = {f"-m {module}": f"{PYTHON} -m {module}"}
    if module in SCRIPTS:
        called[SCRIPTS[module]] = SCRIPTS[module]
    for call, prog in called.items():
        result = helps[f"{call} --help"]
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: {prog} [-h] [--version]"), result.stdout
        for command in SUBCOMMANDS[module]:
            listed = re.findall(rf"^    {re.escape(command)}(\s|$)", result.stdout, flags=re.MULTILINE)
            assert len(listed) == 1, result.stdout
            assert f"{prog} {command}" not in result.stdout  # no usage block of its own beside argparse's list


@pytest.mark.parametrize("module", SUBCOMMANDS)
def test_version_is_the_installed_package_version(module, helps):
    called = [(SCRIPTS[module], SCRIPTS[module])] if module in SCRIPTS else [(f"-m {module}", f"{PYTHON} -m {module}")]
    for call, prog in called:
        result = helps[f"{call} --version"]
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{prog} (shop-services) {version('shop-services')}"


def test_a_failure_line_starts_with_the_name_it_was_called_by():
    result = run(BIN / "order-ops", "outbox", ORDER_DATABASE_URL="postgres://u@127.0.0.1:1/x")
    assert result.returncode == 1
    assert result.stderr.startswith("order-ops: PostgreSQL is not reachable at"), result.stderr


def test_outbox_and_heads_as_json(test_run):
    outbox = run(sys.executable, "-m", "order.ops", "outbox", "--json", ORDER_DATABASE_URL=test_run.order_db)
    assert outbox.returncode == 0, outbox.stderr
    document = json.loads(outbox.stdout)
    assert set(document) == {"pending_events", "oldest_pending_seconds"} and document["pending_events"] >= 0
    history = run(
        sys.executable, "-m", "customer.manage", "history", "--json", CUSTOMER_DATABASE_URL=test_run.customer_db
    )
    assert history.returncode == 0, history.stderr
    migrations = json.loads(history.stdout)
    assert migrations and all(set(m) == {"version", "applied"} and m["applied"] for m in migrations)
    heads = run(sys.executable, "-m", "customer.manage", "heads", "--json", CUSTOMER_DATABASE_URL=test_run.customer_db)
    assert heads.returncode == 0 and json.loads(heads.stdout) == [], heads.stdout + heads.stderr


async def test_reconcile_as_json_names_the_fields_as_the_api_does(
    order_client, customer_api, customer_settings, capsys
):
    customer = await create_customer(customer_api)
    order = {"customer_id": customer["id"], "product_name": "Pen", "quantity": 1, "price": 2}
    assert (await order_client.post("/orders", json={"order": order})).status == 201

    async def counted():
        assert (await (await customer_api.get(f"/customers/{customer['id']}")).json())["orders_count"] == 1

    await eventually(counted)
    use_app_orm(customer_api.app)
    await Customer.filter(id=customer["id"]).update(orders_count=3)
    order_url = str(order_client.make_url(""))
    capsys.readouterr()
    assert await customer_ops.reconcile(customer_settings, order_url, [customer["id"]], as_json=True) == 1
    document = json.loads(capsys.readouterr().out)
    assert document == {"checked": 1, "drift": [{"customer_id": customer["id"], "orders_count": 3, "orders_held": 1}]}
