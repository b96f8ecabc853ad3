"""Every statement the customer service sends to its database, behind names that say what they do.

All of it is SQL on Tortoise's connection: the customer is read for every order placed, and one
statement per change (RETURNING the row) keeps each write a single round trip. A customer is read
into one shape, the contract's CustomerOut; the Tortoise models define the tables and migrations.
"""

from datetime import datetime
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from customer.db_config import APP
from customer.schemas import CustomerOut
from shared.db import db
from shared.housekeeping import purge_in_batches
from shared.pagination import Position

# --- customers ----------------------------------------------------------------------------------------------

COLUMNS = "id, name, address, email, orders_count, created_at, updated_at"
# Only these may change through the API; they are the only names a SET list is built from.
CHANGEABLE = ("name", "address", "email")


class EmailInUse(Exception):
    """Another customer has this email (the unique index decided)."""


async def _one(sql: str, values: list) -> CustomerOut | None:
    try:
        rows = await db(APP).execute_query_dict(sql, values)
    except IntegrityError:
        raise EmailInUse() from None
    return CustomerOut.model_validate(rows[0]) if rows else None


def customers_page(after: bool) -> str:
    """Newest first, from an offset ($2), or after a position ($3, $4): an index scan that starts right
    at that position, so a deep page reads only its own rows."""
    position = "(created_at, id) < ($3, $4)" if after else "TRUE"
    return f"SELECT {COLUMNS} FROM customers WHERE {position} ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"


async def list_customers(limit: int, offset: int, after: Position | None) -> list[CustomerOut]:
    rows = await db(APP).execute_query_dict(customers_page(after is not None), [limit, offset, *(after or ())])
    return [CustomerOut.model_validate(row) for row in rows]


async def get_customer(customer_id: int) -> CustomerOut | None:
    return await _one(f"SELECT {COLUMNS} FROM customers WHERE id = $1", [customer_id])


async def add_customer(name: str, address: str, email: str | None) -> CustomerOut:
    added = await _one(
        f"INSERT INTO customers (name, address, email, orders_count, created_at, updated_at) "
        f"VALUES ($1, $2, $3, 0, now(), now()) RETURNING {COLUMNS}",
        [name, address, email],
    )
    assert added is not None  # an INSERT without a conflict clause returns its row or raises
    return added


async def change_customer(customer_id: int, changes: dict) -> CustomerOut | None:
    """Write only the changed fields (never orders_count, which the consumer moves concurrently)."""
    names = [name for name in CHANGEABLE if name in changes]
    assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, 2))
    return await _one(
        f"UPDATE customers SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        [customer_id, *(changes[name] for name in names)],
    )


async def delete_customer(customer_id: int) -> bool:
    deleted, _ = await db(APP).execute_query("DELETE FROM customers WHERE id = $1", [customer_id])
    return bool(deleted)


# --- applied events -----------------------------------------------------------------------------------------

# One statement for a whole batch, so one round trip and its own transaction. The customers are locked
# in id order (two consumers with overlapping batches cannot deadlock); an event id is recorded only if
# its customer exists, and a count moves only by the ids that were new. A concurrent copy of an event
# waits for the first insert to commit (ON CONFLICT) and then counts nothing.
APPLY_ORDERS_CREATED = """
WITH input AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS t(event_id, customer_id)),
     known AS (SELECT id FROM customers WHERE id = ANY($2::int[]) ORDER BY id FOR UPDATE),
     recorded AS (INSERT INTO processed_events (event_id, event_type, processed_at)
                  SELECT i.event_id, $3, now() FROM input i JOIN known k ON k.id = i.customer_id
                  ON CONFLICT DO NOTHING RETURNING event_id),
     counted AS (UPDATE customers c SET orders_count = c.orders_count + n.orders, updated_at = now()
                 FROM (SELECT i.customer_id, count(*) AS orders FROM recorded JOIN input i USING (event_id)
                       GROUP BY i.customer_id) n
                 WHERE c.id = n.customer_id)
SELECT i.event_id, recorded.event_id IS NOT NULL AS applied, known.id IS NOT NULL AS customer_exists
FROM input i LEFT JOIN recorded USING (event_id) LEFT JOIN known ON known.id = i.customer_id
"""


async def record_orders_created(event_type: str, orders: list[tuple[UUID, int]]) -> dict[UUID, tuple[bool, bool]]:
    """Record each (event id, customer id) and count its order, once per event id, in one transaction.

    Returns, per event id: (applied now, customer exists). The event ids must be distinct.
    """
    _, rows = await db(APP).execute_query(
        APPLY_ORDERS_CREATED,
        [
            [event_id for event_id, _ in orders],
            [customer_id for _, customer_id in orders],
            event_type,
        ],
    )
    return {row["event_id"]: (row["applied"], row["customer_exists"]) for row in rows}


PURGE_PROCESSED_EVENTS = """
DELETE FROM processed_events WHERE event_id IN (
    SELECT event_id FROM processed_events WHERE processed_at < $1 ORDER BY processed_at LIMIT $2)
"""


async def purge_processed_events(processed_before: datetime, batch: int) -> int:
    return await purge_in_batches(APP, "processed_events", PURGE_PROCESSED_EVENTS, [processed_before], batch)


async def probe() -> None:
    """One round trip: raises while the database is away."""
    await db(APP).execute_query("SELECT 1")


# --- operator tools and seeds -------------------------------------------------------------------------------


async def count_customers(only: list[int] | None = None) -> int:
    _, rows = await db(APP).execute_query(
        "SELECT count(*) FROM customers WHERE $1::int[] IS NULL OR id = ANY($1)", [only]
    )
    return rows[0][0]


async def orders_counts_page(after_id: int, limit: int, only: list[int] | None = None) -> list[tuple[int, int]]:
    """(id, orders_count) of the next `limit` customers after `after_id`, in id order (keyset paging)."""
    _, rows = await db(APP).execute_query(
        "SELECT id, orders_count FROM customers WHERE id > $1 AND ($2::int[] IS NULL OR "
        "id = ANY($2)) ORDER BY id LIMIT $3",
        [after_id, only, limit],
    )
    return [(row["id"], row["orders_count"]) for row in rows]


async def insert_seed_customers(conn: BaseDBAsyncClient, rows: list[tuple[int, str, str, str]]) -> int:
    """Insert (id, name, address, email) rows whose id is free; returns how many were new."""
    ids, names, addresses, emails = (list(column) for column in zip(*rows, strict=True))
    added = await conn.execute_query_dict(
        "INSERT INTO customers (id, name, address, email, orders_count, created_at, updated_at) "
        "SELECT id, name, address, email, 0, now(), now() "
        "FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS t(id, name, address, email) "
        "ON CONFLICT DO NOTHING RETURNING id",
        [ids, names, addresses, emails],
    )
    # Rows inserted with explicit ids leave the sequence behind; move it past them.
    await conn.execute_query(
        "SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))"
    )
    return len(added)
