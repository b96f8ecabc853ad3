"""Tortoise ORM as an aiohttp resource, and the small amount of raw PostgreSQL both services need."""

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from aiohttp import web
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext, require_context
from tortoise.transactions import in_transaction

from shared.problems import exception_chain, is_connection_failure

log = logging.getLogger(__name__)

ORM = web.AppKey("orm", TortoiseContext)


DEFAULT_POOL = {"minsize": "1", "maxsize": "10"}  # Tortoise's own default maxsize of 5 queues requests early
STOP_GRACE = 10.0  # seconds: longer than any task takes to wind down (the relay's grace for its confirms is 5 s)


async def reset_if_dirty(connection: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default costs a round trip on every release (RESET ALL,
    UNLISTEN *, ...) to undo session state these services never set; only an open transaction matters."""
    if connection.is_in_transaction():
        await connection.reset()


# libpq's TLS parameters (`?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`), which asyncpg reads from a
# DSN as libpq does. The rest of a URL's query is Tortoise's (minsize, maxsize, ...): in a DSN asyncpg would
# send it to the server as settings.
TLS_PARAMS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslpassword",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
    }
)


def tls_query(db_url: str) -> str:
    """The URL's TLS parameters alone, as a query string ('' when it has none)."""
    return urlencode([(key, value) for key, value in parse_qsl(urlsplit(db_url).query) if key in TLS_PARAMS])


def _connect_with_tls(tls_dsn: str) -> Callable[..., Coroutine]:
    async def connect(dsn: str | None, **kwargs) -> asyncpg.Connection:
        # The pool's connect: Tortoise gives the server and the login as keywords (they win over a DSN's),
        # the TLS parameters come from the DSN, so asyncpg applies libpq's rules to them, as for asyncpg_dsn.
        return await asyncpg.connect(tls_dsn, **kwargs)

    return connect


def connection_config(db_url: str) -> dict:
    config = expand_db_url(db_url)
    credentials = {key: value for key, value in config["credentials"].items() if key not in TLS_PARAMS}
    config["credentials"] = {**DEFAULT_POOL, **credentials, "reset": reset_if_dirty}
    if tls := tls_query(db_url):  # Tortoise would pass them to asyncpg as keywords, which it has not
        config["credentials"]["connect"] = _connect_with_tls(f"postgresql://?{tls}")
    return config


def orm_config(db_url: str, app: str, models: list[str]) -> dict:
    """One Tortoise app per service; its connection carries the same name as the app."""
    return {
        "connections": {app: connection_config(db_url)},
        "apps": {app: {"models": [*models, "aerich.models"], "default_connection": app}},
        "use_tz": True,
        "timezone": "UTC",
    }


def tortoise_ctx(config: dict) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx entry: an explicit TortoiseContext per app, so two apps can share a process (tests)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        orm = TortoiseContext()
        with orm:  # entered only around init and close: requests and tasks enter it themselves
            await orm.init(config=config)
        app[ORM] = orm
        yield
        with orm:
            await orm.close_connections()

    return ctx


@contextlib.asynccontextmanager
async def orm_session(config: dict) -> AsyncIterator[None]:
    """The ORM for a command line tool's run (a service's app has tortoise_ctx instead)."""
    orm = TortoiseContext()
    with orm:
        await orm.init(config=config)
        try:
            yield
        finally:
            await orm.close_connections()


def db(name: str) -> BaseDBAsyncClient:
    """The current ORM's connection `name`."""
    return require_context().connections.get(name)


def use_app_orm(app: web.Application) -> None:
    """Make `app`'s ORM the current one for the rest of this task: a request (aiohttp runs each in a
    task of its own), a background task started in a copied context, a test.

    Entered and never exited: the setting ends with the task's context. (`with orm:` cannot serve: a
    TortoiseContext keeps one reset token per instance, and requests run concurrently.)
    """
    app[ORM].__enter__()


async def stop_tasks(tasks: list[asyncio.Task]) -> None:
    """Cancel background tasks one by one, last started first (the relay drains its batches while its
    broker link is still up), waiting for each; one that had already failed is logged, and the rest
    are still stopped. A task still running after STOP_GRACE (a library swallowed its cancellation)
    is cancelled again, so a shutdown never hangs."""
    for task in reversed(tasks):
        task.cancel()
        while not (await asyncio.wait({task}, timeout=STOP_GRACE))[0]:
            log.warning("background task %r did not stop when cancelled; cancelling it again", task.get_name())
            task.cancel()
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %r had failed: %r", task.get_name(), task.exception())


def start_orm_task(app: web.Application, coro: Coroutine, name: str) -> asyncio.Task:
    """A background task that sees this app's ORM whatever task creates it."""
    context = contextvars.copy_context()
    context.run(use_app_orm, app)
    return asyncio.create_task(coro, name=name, context=context)


@contextlib.asynccontextmanager
async def transaction(connection_name: str) -> AsyncIterator[BaseDBAsyncClient]:
    """`in_transaction`, safe when BEGIN fails on a dead connection.

    Tortoise 1.1 acquires a pooled connection and sets its "current transaction"
    context variable before BEGIN; when BEGIN raises, neither is undone. The
    connection leaks from the pool, and a long-lived task (the outbox relay) keeps
    seeing a dead transaction for ever. Undo both here.
    """
    context = in_transaction(connection_name)
    try:
        connection = await context.__aenter__()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await context.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_exit(context)
        yield connection


def asyncpg_dsn(db_url: str) -> str:
    """Tortoise's `postgres://...?minsize=` URL as a plain libpq DSN for asyncpg (its TLS parameters kept)."""
    parts = urlsplit(db_url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, tls_query(db_url), ""))


def with_database(db_url: str, database: str) -> str:
    parts = urlsplit(db_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def database_name(db_url: str) -> str:
    return urlsplit(db_url).path.lstrip("/")


def admin_url_for(db_url: str) -> str:
    """The default admin URL: the same server as the service's, as `postgres`, in the `postgres` database,
    over the same TLS."""
    parts = urlsplit(db_url)
    return urlunsplit((parts.scheme, f"postgres@{parts.netloc.rsplit('@', 1)[-1]}", "/postgres", tls_query(db_url), ""))


async def drop_database(db_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(with_database(db_url, "postgres")), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(db_url)}" WITH (FORCE)')
    finally:
        await conn.close()


# SQLSTATE classes of failures that pass by themselves: 08 connection, 40 rollback (serialization
# failure, deadlock), 53 insufficient resources (too many connections, out of memory or disk),
# 57 operator intervention (shutdown, restart), 58 I/O; and 55P03 lock not available. Not 57014, a
# statement that ran past its statement_timeout: that statement failed, the database did not.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
STATEMENT_TIMED_OUT = "57014"


def _transient_sqlstate(cause: BaseException) -> bool:
    sqlstate = getattr(cause, "sqlstate", None) if isinstance(cause, asyncpg.PostgresError) else None
    if not sqlstate or sqlstate == STATEMENT_TIMED_OUT:
        return False
    return sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES or sqlstate == "55P03"


def is_transient_database_error(exc: BaseException) -> bool:
    """True if the database failed, not the statement: retrying later, unchanged, can succeed."""
    return is_connection_failure(exc) or any(_transient_sqlstate(cause) for cause in exception_chain(exc))
