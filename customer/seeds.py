"""Seed customers with fixed ids, so the README's example (customer 1) works on a fresh system."""

from tortoise.backends.base.client import BaseDBAsyncClient

from customer.repository import insert_seed_customers

SEED_CUSTOMERS = [
    (1, "Juan Guauque", "Bogotá", "juan.guauque@example.com"),
    (2, "Ada Lovelace", "London", "ada@example.com"),
    (3, "Grace Hopper", "Arlington", "grace@example.com"),
]


async def seed_customers(conn: BaseDBAsyncClient) -> int:
    return await insert_seed_customers(conn, SEED_CUSTOMERS)
