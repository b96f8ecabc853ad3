"""Every statement the customer service sends to its database, behind names that say what they do.

The ORM where a path is not hot; plain SQL where the benchmark showed it matters (reading one
customer, which the order service does for every order; applying a batch of events). Both take and
return the models' values, so callers never see which.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from tortoise.exceptions import IntegrityError

from customer.db_config import APP
from customer.models import Customer
from shared.db import db
from shared.housekeeping import purge_in_batches

# --- customers ----------------------------------------------------------------------------------------------


async def list_customers(limit: int, offset: int) -> tuple[list[Customer], int]:
    """A page, newest first, and the total."""
    total = await Customer.all().count()
    if offset >= total:
        return [], total
    return await Customer.all().order_by("-created_at", "-id").offset(offset).limit(limit), total


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer as read for showing: a plain record, not a Customer model (Tortoise's field-by-field
    set-up and timezone conversion cost as much as the rest of a GET)."""

    id: int
    name: str
    address: str
    email: str | None
    orders_count: int
    created_at: datetime
    updated_at: datetime


SELECT_CUSTOMER = "SELECT id, name, address, email, orders_count, created_at, updated_at FROM customers WHERE id = $1"


async def get_customer(customer_id: int) -> CustomerRow | None:
    """The reader of a customer to show: a plain query, since the order service reads one per order."""
    _, rows = await db(APP).execute_query(SELECT_CUSTOMER, [customer_id])
    return CustomerRow(**rows[0]) if rows else None


async def load_customer(customer_id: int) -> Customer | None:
    """The customer as a model, to change it."""
    return await Customer.get_or_none(id=customer_id)


class EmailInUse(Exception):
    """Another customer has this email (the unique index decided)."""


async def add_customer(fields: dict) -> Customer:
    try:
        return await Customer.create(**fields)
    except IntegrityError:
        raise EmailInUse() from None


async def save_changes(customer: Customer, changes: dict) -> None:
    """Write only the changed fields: a full save would overwrite a concurrent orders_count increment."""
    customer.update_from_dict(changes)
    try:
        await customer.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise EmailInUse() from None


async def delete_customer(customer_id: int) -> bool:
    return bool(await Customer.filter(id=customer_id).delete())


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


# --- operator tools (on a connection of their own, without the ORM) ----------------------------------------


async def count_customers(conn: asyncpg.Connection, only: list[int] | None = None) -> int:
    return await conn.fetchval("SELECT count(*) FROM customers WHERE $1::int[] IS NULL OR id = ANY($1)", only)


async def orders_counts_page(
    conn: asyncpg.Connection, after_id: int, limit: int, only: list[int] | None = None
) -> list[tuple[int, int]]:
    """(id, orders_count) of the next `limit` customers after `after_id`, in id order (keyset paging)."""
    rows = await conn.fetch(
        "SELECT id, orders_count FROM customers WHERE id > $1 AND ($2::int[] IS NULL OR "
        "id = ANY($2)) ORDER BY id LIMIT $3",
        after_id,
        only,
        limit,
    )
    return [(row["id"], row["orders_count"]) for row in rows]


# --- seeds (run by `manage seed` on the migration's connection, before any ORM) -----------------------------


async def insert_seed_customers(conn: asyncpg.Connection, rows: list[tuple[int, str, str, str]]) -> int:
    """Insert (id, name, address, email) rows whose id is free; returns how many were new."""
    added = 0
    for row in rows:
        status = await conn.execute(
            """INSERT INTO customers (id, name, address, email, orders_count, created_at, updated_at)
               VALUES ($1, $2, $3, $4, 0, now(), now()) ON CONFLICT DO NOTHING""",
            *row,
        )
        added += int(status.rsplit(" ", 1)[1])
    # Rows inserted with explicit ids leave the sequence behind; move it past them.
    await conn.execute("SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))")
    return added
