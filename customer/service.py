"""Customer rules and transactions; the HTTP handlers and the event consumer both call in here."""

import logging

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.timezone import now

from customer.db_config import APP
from customer.models import Customer, ProcessedEvent
from customer.schemas import CustomerIn, CustomerPatch
from shared.db import transaction
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


async def apply_order_created(event: OrderEvent) -> bool:
    """Count the order once: the event id and the increment commit together. False for a duplicate."""
    try:
        async with transaction(APP) as conn:
            await ProcessedEvent.create(event_id=event.event_id, event_type=event.event_type, using_db=conn)
            customers = Customer.filter(id=event.data.customer_id).using_db(conn)
            if not await customers.update(orders_count=F("orders_count") + 1, updated_at=now()):
                raise UnknownCustomer(f"customer {event.data.customer_id} does not exist")
    except IntegrityError:
        log.info("event %s already applied; skipping", event.event_id)
        return False
    return True
