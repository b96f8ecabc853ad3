"""Seed customers with fixed ids, so the README's example (customer 1) works on a fresh system."""

import asyncpg

SEED_CUSTOMERS = [
    (1, "Juan Guauque", "Bogotá", "juan.guauque@example.com"),
    (2, "Ada Lovelace", "London", "ada@example.com"),
    (3, "Grace Hopper", "Arlington", "grace@example.com"),
]


async def seed_customers(conn: asyncpg.Connection) -> int:
    added = 0
    for row in SEED_CUSTOMERS:
        status = await conn.execute(
            """INSERT INTO customers (id, name, address, email, orders_count, created_at, updated_at)
               VALUES ($1, $2, $3, $4, 0, now(), now()) ON CONFLICT DO NOTHING""",
            *row,
        )
        added += int(status.rsplit(" ", 1)[1])
    # Rows inserted with explicit ids leave the sequence behind; move it past them.
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))"
    )
    return added
