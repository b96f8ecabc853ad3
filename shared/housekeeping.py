"""Bounded purges and vacuums both services run on their own tables.

A purge deletes in batches of `batch` rows, each batch its own short transaction, so it never holds
locks for long nor blocks the hot path. Each batch first takes a transaction-level advisory lock
with `pg_try_advisory_xact_lock`: while one instance purges a table, the others skip their turn
(a transaction-level lock also works through PgBouncer in transaction mode, a session lock would not).
"""

import logging
import zlib

from shared.db import db, transaction

log = logging.getLogger(__name__)

MAX_BATCHES_PER_ROUND = 1000  # a round stops here and the next one goes on, so no round runs for ever


def lock_key(name: str) -> int:
    """A stable advisory-lock key for a purge, the same in every process (unlike hash())."""
    return zlib.crc32(f"purge:{name}".encode())


async def purge_in_batches(connection: str, name: str, delete_batch_sql: str, args: list, batch: int) -> int:
    """Run `delete_batch_sql` (which deletes at most its last parameter's rows) until it deletes fewer.

    Returns the rows deleted; 0 also when another instance holds this purge's lock.
    """
    total = 0
    for _ in range(MAX_BATCHES_PER_ROUND):
        async with transaction(connection) as conn:
            _, rows = await conn.execute_query("SELECT pg_try_advisory_xact_lock($1) AS held", [lock_key(name)])
            if not rows[0]["held"]:
                log.debug("purge of %s: another instance is at it", name)
                return total
            deleted, _ = await conn.execute_query(delete_batch_sql, [*args, batch])
        total += deleted
        if deleted < batch:
            break
    if total:
        log.info("purged %d row(s) from %s", total, name)
    return total


async def vacuum(connection: str, table: str) -> None:
    """VACUUM a queue-like table whose rows are deleted soon after they are written.

    Dead index entries of deleted rows stay until a vacuum; where autovacuum is off or behind, every
    scan from the head of the index walks them. SKIP_LOCKED: if another instance is vacuuming it now,
    this one does nothing. A role that does not own the table gets a warning from PostgreSQL, no error.
    """
    await db(connection).execute_script(f'VACUUM (SKIP_LOCKED) "{table}"')
