"""What the operator's command lines say when PostgreSQL or RabbitMQ is away or a URL is wrong.

One line on stderr and exit code 1, never a traceback (`--verbose` adds it): what failed, where (the URL,
its password masked), which variable names it, and how to fix it. `make run`'s preflight says the same.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiormq.exceptions
import asyncpg
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from shared.broker_urls import broker_urls
from shared.problems import exception_chain, is_connection_failure
from shared.tls import POSTGRES_FIX, RABBITMQ_FIX, certificate_failure

DISTRIBUTION = "shop-services"  # pyproject's [project] name: --version is its version
POSTGRES, RABBITMQ = "PostgreSQL", "RabbitMQ"
POSTGRES_SCHEMES = ("postgres", "postgresql", "asyncpg", "psycopg")
HOW_TO_START = {
    POSTGRES: "start it (Debian: `pg_ctlcluster 15 main start`; containers: `docker compose up -d postgres`) "
    "or point {variable} at a running server",
    RABBITMQ: "start it (`rabbitmq-server -detached`; containers: `docker compose up -d rabbitmq`) "
    "or point {variable} at a running broker",
}
_AMQP_REFUSALS = (
    aiormq.exceptions.AuthenticationError,
    aiormq.exceptions.ProbableAuthenticationError,
    aiormq.exceptions.ConnectionNotAllowed,
)
Settings = TypeVar("Settings", bound=BaseSettings)
_UNREACHABLE = (aiormq.exceptions.AMQPConnectionError, aiormq.exceptions.IncompatibleProtocolError)


class CommandError(Exception):
    """A failure the operator can fix; its message is the whole report."""


@dataclass(frozen=True)
class Target:
    """Something a command connects to: PostgreSQL or RabbitMQ, at the URL a variable gives."""

    what: str
    variable: str
    url: str
    setup: str = ""  # the command that creates a missing database or role, if there is one

    @property
    def where(self) -> str:
        return f"{redact(self.url)} ({self.variable})"


def redact(url: str) -> str:
    """The URL (or comma-separated URLs) with any password masked."""
    if "," in url:
        return ",".join(redact(one) for one in url.split(","))
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2 and ":" in netloc[0]:
        return url.replace(netloc[0], netloc[0].split(":")[0] + ":***", 1)
    return url


def check_url(target: Target) -> None:
    """CommandError, before any connection, for a URL the driver would fail on obscurely."""
    if target.what == RABBITMQ:
        try:
            broker_urls(target.url)
        except ValueError as exc:
            raise CommandError(f"{exc} -> use amqp://user:password@host:5672/vhost") from None
        return
    try:
        parts = urlsplit(target.url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:  # a port that is not a number
        port_ok = False
    if parts.scheme not in POSTGRES_SCHEMES or not parts.hostname or not port_ok or not parts.path.strip("/"):
        raise CommandError(
            f"{target.variable} is not a PostgreSQL URL: {redact(target.url)} "
            f"-> use postgres://user[:password]@host[:port]/database"
        )


def explain(exc: BaseException, target: Target) -> str | None:
    """The line for a failure to use `target`; None for anything else (a bug keeps its traceback)."""
    for cause in exception_chain(exc):
        if isinstance(cause, CommandError):
            return str(cause)
        if isinstance(cause, asyncpg.InvalidCatalogNameError):
            fix = f"run `{target.setup}` (it creates it)" if target.setup else f"create it or fix {target.variable}"
            return f"{POSTGRES} has no database {urlsplit(target.url).path.strip('/')} at {target.where} -> {fix}"
        if isinstance(cause, asyncpg.UndefinedTableError) and target.setup:
            return f"{POSTGRES} at {target.where} is not migrated ({cause}) -> run `{target.setup}`"
        if isinstance(cause, aiormq.exceptions.ChannelNotFoundEntity | aiormq.exceptions.ChannelAccessRefused):
            return f"{RABBITMQ} at {target.where} refused: {cause} -> {target.setup or 'check its queues and rights'}"
        if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
            fix = f"run `{target.setup}` (it creates the role) or " if target.setup else ""
            return (
                f"{POSTGRES} refused the login at {target.where}: {cause} -> {fix}"
                f"fix the user or password in {target.variable}"
            )
    if (failure := certificate_failure(exc)) is not None:  # a configuration error, not an outage
        fix = (POSTGRES_FIX if target.what == POSTGRES else RABBITMQ_FIX).format(variable=target.variable)
        return f"{target.what} at {target.where}: {failure} -> {fix} (docs/operations.md#encryption-in-transit)"
    # connect_first folds each broker's failure into one ConnectionError's text: a refusal shows there.
    refused = any(isinstance(cause, _AMQP_REFUSALS) for cause in exception_chain(exc)) or "ACCESS_REFUSED" in str(exc)
    if target.what == RABBITMQ and refused:
        return f"{RABBITMQ} refused the login at {target.where}: {exc} -> fix the user or password in {target.variable}"
    if is_connection_failure(exc) or any(isinstance(cause, _UNREACHABLE) for cause in exception_chain(exc)):
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        how = HOW_TO_START.get(target.what, "start it or fix {variable}").format(variable=target.variable)
        return f"{target.what} is not reachable at {target.where}: {detail} -> {how}"
    return None


@contextlib.contextmanager
def reaching(target: Target) -> Iterator[None]:
    """Turn a failure to use `target` inside the block into a CommandError that names it."""
    check_url(target)
    try:
        yield
    except CommandError:
        raise
    except Exception as exc:
        line = explain(exc, target)
        if line is None:
            raise
        raise CommandError(" ".join(line.split())) from exc  # a driver's message may span lines


class Progress:
    """`label: done/total` on stderr about every tenth of the way, for a command that takes a while."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._step, self._next = max(1, total // 10), max(1, total // 10)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.done >= self._next or self.done == self.total:
            print(f"{self.label}: {self.done}/{self.total}", file=sys.stderr, flush=True)
            self._next = self.done + self._step


def program_name(module: str) -> str:
    """The name the command was called by: `customer-ops` for the console script, `python -m customer.ops`
    for the module (what Python 3.12's argparse works out by itself)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in (module, f"{module}.__main__"):
        return f"{os.path.basename(sys.executable)} -m {module}"
    return os.path.basename(sys.argv[0]) or module


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def prose(doc: str) -> str:
    """A module docstring without its indented usage block: argparse lists each subcommand itself."""
    paragraphs = [part for part in doc.strip().split("\n\n") if not part.startswith("    ")]
    return "\n\n".join(paragraphs)


def command_parser(module: str, doc: str | None, verbose: bool = True) -> argparse.ArgumentParser:
    """The parser every command line starts from: the name it was called by, its module docstring's prose,
    --version and (unless it has no use for it) -v/--verbose."""
    parser = argparse.ArgumentParser(
        prog=program_name(module), description=prose(doc or ""), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s ({DISTRIBUTION}) {package_version()}")
    if verbose:
        add_verbose(parser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """Each subcommand listed once, under COMMAND (not again as a {a,b,c} choice list)."""
    return parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout (field names as the HTTP API's)"
    )


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=None, separators=(",", ":"), default=str))


def add_verbose(parser: argparse.ArgumentParser, sub: bool = False) -> None:
    """-v/--verbose, before or after the subcommand (a subcommand's own default must not reset it)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="on failure, show the traceback too",
    )


def load_settings(cls: type[Settings]) -> Settings:
    """The settings from the environment; a bad value is a CommandError that names its variable."""
    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise CommandError(f"invalid setting: {problems} -> fix the variable (see .env.example)") from None


def run_command(prog: str, command: Callable[[], int], verbose: bool = False) -> int:
    """Run a command's body; a CommandError becomes its one line on stderr, after the command's name
    (`customer-ops`, or `customer.ops` for `python -m customer.ops`), and exit code 1."""
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # its own connect-error lines would repeat ours
    prog = prog.rsplit(" -m ", 1)[-1]
    try:
        return command()
    except CommandError as exc:
        if verbose:
            traceback.print_exc()
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
