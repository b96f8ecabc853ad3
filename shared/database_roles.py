"""Each service's database with two roles (least privilege), made and kept by `manage migrate`.

- The owner role (`<service>_owner`, the MIGRATION_DATABASE_URL's user) owns the database and its tables;
  migrations run as it.
- The runtime role (the DATABASE_URL's user) serves requests: it may read and write rows and use the
  sequences, nothing else: no CREATE, DROP or ALTER. It owns only the queue-like tables its housekeeping
  vacuums (PostgreSQL 15 lets only a table's owner VACUUM them).
- The session limits (statement, lock and idle-in-transaction timeouts) are set on the database, for
  every role but the owner, whose migrations may take longer.

Making the roles, the database, and moving an installation whose runtime role owned everything needs the
admin (superuser) URL; once they are right, migrate needs neither it nor any superuser.
"""

import logging
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from shared.db import admin_url_for, asyncpg_dsn, database_name, with_database

log = logging.getLogger(__name__)

LOGIN = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"


def role_of(db_url: str) -> str:
    return urlsplit(db_url).username or "postgres"


def with_role(db_url: str, role: str) -> str:
    """The same server and database as `db_url`, as `role` (no password: give one in the URL you set)."""
    parts = urlsplit(db_url)
    return urlunsplit((parts.scheme, f"{role}@{parts.netloc.rsplit('@', 1)[-1]}", parts.path, parts.query, ""))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class DatabaseRoles:
    owner_url: str
    runtime_url: str
    queue_tables: tuple[str, ...]  # owned by the runtime role, so that its housekeeping may VACUUM them
    session_limits: dict[str, str]  # settings of the database's sessions, e.g. statement_timeout

    @property
    def separate(self) -> bool:
        """False when both URLs name one role (a superuser's URL for both, say): nothing to separate."""
        return role_of(self.owner_url) != role_of(self.runtime_url)


async def for_runtime(roles: DatabaseRoles) -> DatabaseRoles:
    """A runtime role that is a superuser (a development machine's `postgres`) cannot be given less: the
    service then migrates as that role too."""
    if not roles.separate or not await _is_superuser(roles.runtime_url):
        return roles
    return replace(roles, owner_url=roles.runtime_url)


async def _is_superuser(db_url: str) -> bool:
    try:  # its server's `postgres` database: the service's own may not exist yet
        conn = await asyncpg.connect(asyncpg_dsn(with_database(db_url, "postgres")), timeout=5)
    except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError):
        return False  # a role that does not exist yet is made without
    try:
        return bool(await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    finally:
        await conn.close()


async def _connects(db_url: str) -> bool:
    try:
        await (await asyncpg.connect(asyncpg_dsn(db_url), timeout=5)).close()
    except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError):
        return False  # the database or the role is missing
    return True


async def _in_place(roles: DatabaseRoles) -> bool:
    """The roles and the database are as provision() leaves them (then no admin URL is needed). A role whose
    password no longer works (a rotated secret) is not: provision() sets the one its URL gives."""
    if not await _connects(roles.owner_url) or (roles.separate and not await _connects(roles.runtime_url)):
        return False
    if not roles.separate:
        return True
    owner = await asyncpg.connect(asyncpg_dsn(roles.owner_url), timeout=5)
    try:
        return bool(
            await owner.fetchval(
                "SELECT pg_get_userbyid(datdba) = $1 AND has_database_privilege($2, current_database(), 'CONNECT')"
                " AND NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tableowner = $2"
                "                 AND tablename <> ALL($3::text[]))"
                " FROM pg_database WHERE datname = current_database()",
                role_of(roles.owner_url),
                role_of(roles.runtime_url),
                list(roles.queue_tables),
            )
        )
    except asyncpg.UndefinedObjectError:  # the runtime role does not exist
        return False
    finally:
        await owner.close()


async def _ensure_role(admin: asyncpg.Connection, db_url: str, created: list[str]) -> None:
    role, password = role_of(db_url), urlsplit(db_url).password
    secret = f" PASSWORD {await admin.fetchval('SELECT quote_literal($1)', unquote(password))}" if password else ""
    if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        if password:  # the URL's password, which may be new (rotated)
            await admin.execute(f"ALTER ROLE {quote_ident(role)}{secret}")
        return
    await admin.execute(f"CREATE ROLE {quote_ident(role)} {LOGIN}{secret}")
    created.append(f"role {role}")


async def provision(roles: DatabaseRoles, admin_url: str | None = None) -> list[str]:
    """Make both roles and the database exist, owned by the owner, the runtime role allowed to connect,
    and move what the runtime role owned to the owner; returns what it created or moved."""
    if await _in_place(roles):
        return []
    owner, runtime, name = role_of(roles.owner_url), role_of(roles.runtime_url), database_name(roles.owner_url)
    done: list[str] = []
    admin = await asyncpg.connect(asyncpg_dsn(admin_url or admin_url_for(roles.owner_url)), timeout=5)
    try:
        for url in (roles.owner_url, roles.runtime_url) if roles.separate else (roles.owner_url,):
            await _ensure_role(admin, url, done)
        if roles.separate:
            await admin.execute(f"GRANT {quote_ident(runtime)} TO {quote_ident(owner)}")  # to own its queue tables
        current = await admin.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name)
        if current is None:
            await admin.execute(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}")
            done.append(f"database {name}")
        elif current != owner:
            await admin.execute(f"ALTER DATABASE {quote_ident(name)} OWNER TO {quote_ident(owner)}")
            done.append(f"database {name} now owned by {owner}")
        # Only its own roles (and superusers) may connect: another service's cannot.
        await admin.execute(f"REVOKE ALL ON DATABASE {quote_ident(name)} FROM PUBLIC")
        if roles.separate:
            await admin.execute(f"GRANT CONNECT ON DATABASE {quote_ident(name)} TO {quote_ident(runtime)}")
    finally:
        await admin.close()
    if roles.separate:
        in_database = await asyncpg.connect(asyncpg_dsn(with_admin_database(admin_url, roles.owner_url)), timeout=5)
        try:
            if await in_database.fetchval("SELECT count(*) FROM pg_tables WHERE tableowner = $1", runtime):
                await in_database.execute(f"REASSIGN OWNED BY {quote_ident(runtime)} TO {quote_ident(owner)}")
                done.append(f"tables of {runtime} now owned by {owner}")
        finally:
            await in_database.close()
    return done


def with_admin_database(admin_url: str | None, db_url: str) -> str:
    """The admin URL, connected to `db_url`'s database."""
    parts = urlsplit(admin_url or admin_url_for(db_url))
    return urlunsplit((parts.scheme, parts.netloc, f"/{database_name(db_url)}", parts.query, ""))


async def grant_runtime(roles: DatabaseRoles) -> None:
    """After the migrations, as the owner: rows and sequences to the runtime role; the session limits on
    the database (every role's), lifted for the owner itself, whose migrations may take longer."""
    owner = await asyncpg.connect(asyncpg_dsn(roles.owner_url), timeout=5)
    database = quote_ident(database_name(roles.owner_url))
    try:
        async with owner.transaction():
            if roles.separate:
                runtime = quote_ident(role_of(roles.runtime_url))
                await owner.execute(f"GRANT USAGE ON SCHEMA public TO {runtime}")
                await owner.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {runtime}")
                await owner.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {runtime}")
            for name, value in roles.session_limits.items():
                await owner.execute(f"ALTER DATABASE {database} SET {name} = '{value}'")
                if roles.separate:
                    await owner.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {database} SET {name} = 0")
    finally:
        await owner.close()


async def hand_queue_tables_to_runtime(roles: DatabaseRoles, admin_url: str | None) -> list[str]:
    """The queue tables owned by the runtime role, so that its housekeeping may VACUUM them (PostgreSQL
    15 lets only a table's owner). Changing an owner to a role without CREATE on the schema takes a
    superuser: the admin URL, once; without it, autovacuum has to do (a warning says so)."""
    if not roles.separate or not roles.queue_tables:
        return []
    runtime = role_of(roles.runtime_url)
    owner = await asyncpg.connect(asyncpg_dsn(roles.owner_url), timeout=5)
    try:
        foreign = await owner.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY($1::text[])"
            " AND tableowner <> $2",
            list(roles.queue_tables),
            runtime,
        )
    finally:
        await owner.close()
    if not foreign:
        return []
    try:
        admin = await asyncpg.connect(asyncpg_dsn(with_admin_database(admin_url, roles.owner_url)), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("could not hand the queue tables to %s (%s): only autovacuum will vacuum them", runtime, exc)
        return []
    try:
        for row in foreign:
            await admin.execute(f"ALTER TABLE {quote_ident(row['tablename'])} OWNER TO {quote_ident(runtime)}")
    finally:
        await admin.close()
    return [f"table {row['tablename']} now owned by {runtime}" for row in foreign]


def session_limits(statement: float, lock: float, idle_in_transaction: float) -> dict[str, str]:
    """PostgreSQL settings, in milliseconds."""
    return {
        "statement_timeout": str(int(statement * 1000)),
        "lock_timeout": str(int(lock * 1000)),
        "idle_in_transaction_session_timeout": str(int(idle_in_transaction * 1000)),
    }
