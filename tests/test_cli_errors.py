"""The operator's command lines, run as an operator runs them, against a closed port, a missing database
or role, or a bad URL: one line that names the URL (password masked) and its variable, exit code 1."""

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from customer import ops as customer_ops
from customer.manage import main as customer_manage
from order import ops as order_ops
from shared.cli import Progress
from shared.testing.api import create_customer
from shared.testing.plugin import unique
from shared.testing.processes import free_port
from shared.testing.runs import ROOT

PASSWORD = "s3cret-pw"
PREFLIGHT = ["infra/scripts/preflight.py"]
# Each command line, the variable it connects with, and what it connects to.
COMMANDS = {
    "customer.manage migrate": (["-m", "customer.manage", "migrate"], "CUSTOMER_DATABASE_URL"),
    "order.manage history": (["-m", "order.manage", "history"], "ORDER_DATABASE_URL"),
    "customer.ops reconcile": (["-m", "customer.ops", "reconcile"], "CUSTOMER_DATABASE_URL"),
    "order.ops outbox": (["-m", "order.ops", "outbox"], "ORDER_DATABASE_URL"),
    "order.ops republish": (["-m", "order.ops", "republish", "1", "2"], "ORDER_DATABASE_URL"),
    "customer.ops dead-letters": (["-m", "customer.ops", "dead-letters"], "CUSTOMER_DATABASE_URL"),
    "customer.ops replay-dead-letters": (
        ["-m", "customer.ops", "replay-dead-letters", "--by", "ada", "--reason", "fixed"],
        "CUSTOMER_DATABASE_URL",
    ),
    "preflight (PostgreSQL)": (PREFLIGHT, "ORDER_DATABASE_URL"),
    "preflight (RabbitMQ)": (PREFLIGHT, "AMQP_URL"),
}
# Those that need the database to exist already (migrate creates it: test_migrations).
POSTGRES_COMMANDS = ["order.manage history", "customer.ops reconcile", "order.ops outbox", "customer.ops dead-letters"]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    """The failure's whole output: exactly one line, on stderr, no traceback, exit code 1."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and PASSWORD not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0] in result.stderr, output
    return lines[0]


def closed_port_url(variable: str) -> str:
    if variable == "AMQP_URL":
        return f"amqp://guest:{PASSWORD}@127.0.0.1:{free_port()}/"
    return f"postgres://postgres:{PASSWORD}@127.0.0.1:{free_port()}/{unique('db').replace('-', '_')}"


MISSING_DB = unique("missing").replace("-", "_")
MISSING_ROLE = unique("nobody").replace("-", "_")
ADMIN_URL = f"postgres://postgres:{PASSWORD}@127.0.0.1:{free_port()}/postgres"
BAD_URLS = {
    "customer.manage migrate": (f"mysql://root:{PASSWORD}@127.0.0.1/customers", "CUSTOMER_DATABASE_URL is not a"),
    "order.ops outbox": (f"postgres://postgres:{PASSWORD}@127.0.0.1:port/orders", "ORDER_DATABASE_URL is not a"),
    "customer.ops dead-letters": (f"mysql://root:{PASSWORD}@127.0.0.1/customers", "CUSTOMER_DATABASE_URL is not a"),
    "preflight (RabbitMQ)": ("amqp://", "AMQP_URL"),
}
# Every run the tests look at, as (argv, environment); all run at once (each is a second of imports).
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    **{
        f"unreachable {name}": (argv, {variable: closed_port_url(variable)})
        for name, (argv, variable) in COMMANDS.items()
    },
    **{
        f"no database {name}": (argv, {variable: f"postgres://postgres:{PASSWORD}@127.0.0.1:5432/{MISSING_DB}"})
        for name, (argv, variable) in COMMANDS.items()
        if name in POSTGRES_COMMANDS
    },
    **{
        f"no role {name}": (argv, {variable: f"postgres://{MISSING_ROLE}:{PASSWORD}@127.0.0.1:5432/{MISSING_DB}"})
        for name, (argv, variable) in COMMANDS.items()
        if name in POSTGRES_COMMANDS
    },
    **{f"bad url {name}": (COMMANDS[name][0], {COMMANDS[name][1]: value}) for name, (value, _) in BAD_URLS.items()},
    "admin unreachable": (
        ["-m", "customer.manage", "migrate"],
        {"POSTGRES_ADMIN_URL": ADMIN_URL, "CUSTOMER_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{MISSING_DB}"},
    ),
}


@pytest.fixture(scope="module")
def outcome() -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(4) as pool:
        futures = {case: pool.submit(run, argv, **env) for case, (argv, env) in CASES.items()}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unreachable_server_is_one_line_naming_the_masked_url_and_its_variable(name, outcome):
    _, variable = COMMANDS[name]
    url = CASES[f"unreachable {name}"][1][variable]
    line = one_line(outcome[f"unreachable {name}"])
    what = "RabbitMQ" if variable == "AMQP_URL" else "PostgreSQL"
    assert f"{what} is not reachable at {url.replace(PASSWORD, '***')} ({variable})" in line
    assert "start it" in line


@pytest.mark.parametrize("name", POSTGRES_COMMANDS)
def test_a_missing_database_or_role_names_the_command_that_creates_it(name, outcome):
    _, variable = COMMANDS[name]
    service = variable.split("_")[0].lower()
    line = one_line(outcome[f"no database {name}"])
    assert f"PostgreSQL has no database {MISSING_DB} at postgres://postgres:***@127.0.0.1:5432/{MISSING_DB}" in line
    assert f"({variable}) -> run `python -m {service}.manage migrate`" in line
    line = one_line(outcome[f"no role {name}"])
    assert f"PostgreSQL refused the login at postgres://{MISSING_ROLE}:***@127.0.0.1:5432/{MISSING_DB}" in line
    assert f'({variable}): role "{MISSING_ROLE}" does not exist' in line


def test_the_admin_url_is_named_when_migrate_needs_it_and_cannot_reach_it(outcome):
    line = one_line(outcome["admin unreachable"])
    assert f"PostgreSQL is not reachable at {ADMIN_URL.replace(PASSWORD, '***')} (POSTGRES_ADMIN_URL)" in line


@pytest.mark.parametrize("name", BAD_URLS)
def test_a_bad_url_is_one_line_naming_its_variable(name, outcome):
    assert BAD_URLS[name][1] in one_line(outcome[f"bad url {name}"])


def test_reconcile_names_a_bad_order_service_url():
    line = one_line(run(["-m", "customer.ops", "reconcile"], ORDER_SERVICE_URL="127.0.0.1:3001"))
    assert "ORDER_SERVICE_URL is not an http:// URL" in line


def test_verbose_adds_the_traceback_before_the_line():
    url = closed_port_url("ORDER_DATABASE_URL")
    result = run(["-m", "order.ops", "outbox", "--verbose"], ORDER_DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("order.ops: PostgreSQL is not reachable at")


@pytest.mark.parametrize(
    ("main", "commands"),
    [
        (
            customer_manage,
            ["migrate", "seed", "prepare", "history", "heads", "downgrade", "makemigrations", "check-migrations"],
        ),
        (
            customer_ops.main,
            [
                "dead-letters",
                "dead-letter",
                "dead-letter-groups",
                "replay-dead-letters",
                "edit-and-replay",
                "discard-dead-letters",
                "reconcile",
            ],
        ),
        (order_ops.main, ["outbox", "republish"]),
    ],
    ids=["manage", "customer.ops", "order.ops"],
)
def test_every_subcommand_has_help(main, commands, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listing = capsys.readouterr().out
    for command in commands:
        assert command in listing
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        description = text.split("\n\n")[1]  # usage, then the subcommand's own description
        assert description.strip() and not description.startswith(("options", "positional")), text


def test_the_console_scripts_run_the_same_command_lines():
    bin_dir = Path(sys.executable).parent
    for script in ("customer-manage", "order-manage", "customer-ops", "order-ops"):
        if not (bin_dir / script).exists():
            pytest.fail(f"{script} is not installed: run `make install`")
        result = subprocess.run([bin_dir / script, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "COMMAND" in result.stdout, result.stdout + result.stderr


async def test_reconcile_asks_the_order_service_at_order_service_url(customer_client, test_run):
    customer = await create_customer(customer_client)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: exit 2, naming where it asked
    result = await asyncio.to_thread(
        run,
        ["-m", "customer.ops", "reconcile", "--customer", str(customer["id"])],
        ORDER_SERVICE_URL=url,
        CUSTOMER_DATABASE_URL=test_run.customer_db,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the order service did not answer at {url} (ORDER_SERVICE_URL)" in result.stderr


def test_progress_reports_about_every_tenth_and_the_end(capsys):
    progress = Progress("replayed", 25)
    for _ in range(25):
        progress.advance()
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "replayed: 25/25"
    assert 5 <= len(lines) <= 13 and lines[0] == "replayed: 2/25"
