"""Customer rules and transactions; the HTTP handlers and the event consumer both call in here."""

import logging

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError

from customer.db_config import APP
from customer.models import Customer
from customer.schemas import CustomerIn, CustomerPatch
from shared.events import OrderEvent
from shared.problems import Conflict, NotFound, ValidationFailed, field_error

log = logging.getLogger(__name__)


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"Customer {customer_id} does not exist.")


class EmailTaken(Conflict):
    def __init__(self, email: str) -> None:
        super().__init__(f"The email {email} belongs to another customer.", field_error("email", "is taken"))


async def list_customers(limit: int, offset: int) -> tuple[list[Customer], int]:
    total = await Customer.all().count()
    if offset >= total:
        return [], total
    items = await Customer.all().order_by("-created_at", "-id").offset(offset).limit(limit)
    return items, total


async def get_customer(customer_id: int) -> Customer:
    customer = await Customer.get_or_none(id=customer_id)
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


# The order service reads a customer for every order it places: one plain query, no ORM model.
SELECT_CUSTOMER = "SELECT id, name, address, email, orders_count, created_at, updated_at FROM customers WHERE id = $1"


async def read_customer(customer_id: int) -> dict:
    _, rows = await get_connection(APP).execute_query(SELECT_CUSTOMER, [customer_id])
    if not rows:
        raise CustomerNotFound(customer_id)
    return dict(rows[0])


async def create_customer(data: CustomerIn) -> Customer:
    try:
        return await Customer.create(**data.model_dump())
    except IntegrityError:
        raise EmailTaken(data.email) from None


async def update_customer(customer_id: int, patch: CustomerPatch) -> Customer:
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed("Nothing to update.", field_error("customer", "send at least one field"))
    customer = await get_customer(customer_id)
    customer.update_from_dict(changes)
    try:
        # Only the sent fields: a full save would overwrite a concurrent orders_count increment.
        await customer.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise EmailTaken(changes["email"]) from None
    return customer


async def delete_customer(customer_id: int) -> None:
    if not await Customer.filter(id=customer_id).delete():
        raise CustomerNotFound(customer_id)


class UnknownCustomer(Exception):
    """An event names a customer this service does not have: it can never apply."""


# One statement, so one round trip and its own transaction: the event id is recorded only if the
# customer exists, and the count moves only if the id was new. Concurrent duplicates queue on the row
# lock and then find the id taken (ON CONFLICT waits for the first insert to commit).
APPLY_ORDER_CREATED = """
WITH customer AS (SELECT id FROM customers WHERE id = $2 FOR UPDATE),
     recorded AS (INSERT INTO processed_events (event_id, event_type, processed_at)
                  SELECT $1, $3, now() FROM customer ON CONFLICT DO NOTHING RETURNING event_id)
UPDATE customers SET orders_count = orders_count + 1, updated_at = now()
FROM recorded WHERE customers.id = $2
RETURNING customers.id
"""


async def apply_order_created(event: OrderEvent) -> bool:
    """Count the order once. False for an event already applied; UnknownCustomer if it can never apply."""
    customer_id = event.data.customer_id
    _, updated = await get_connection(APP).execute_query(
        APPLY_ORDER_CREATED, [event.event_id, customer_id, event.event_type]
    )
    if updated:
        return True
    if not await Customer.exists(id=customer_id):
        raise UnknownCustomer(f"customer {customer_id} does not exist")
    log.info("event %s already applied; skipping", event.event_id)
    return False
