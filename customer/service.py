"""Customer rules and transactions; the HTTP handlers and the event consumer both call in here."""

import enum
import logging
from uuid import UUID

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError

from customer.db_config import APP
from customer.models import Customer
from customer.schemas import CustomerIn, CustomerPatch
from shared.events import ORDER_CREATED, OrderEvent
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


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # applied before: a redelivery or a copy
    UNKNOWN_CUSTOMER = "unknown customer"  # can never apply


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


async def apply_orders_created(events: list[OrderEvent]) -> dict[UUID, Outcome]:
    """Count each event's order once; the events must have distinct ids."""
    _, rows = await get_connection(APP).execute_query(APPLY_ORDERS_CREATED, [
        [event.event_id for event in events], [event.data.customer_id for event in events], ORDER_CREATED,
    ])
    outcomes = {}
    for row in rows:
        if row["applied"]:
            outcomes[row["event_id"]] = Outcome.APPLIED
        else:
            outcomes[row["event_id"]] = Outcome.DUPLICATE if row["customer_exists"] else Outcome.UNKNOWN_CUSTOMER
    return outcomes
