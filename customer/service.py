"""Customer rules and transactions; the HTTP handlers and the event consumer both call in here."""

import enum
import logging
from uuid import UUID

from customer import repository
from customer.schemas import CustomerIn, CustomerOut, CustomerPatch
from shared.events import ORDER_CREATED, OrderEvent
from shared.pagination import Position
from shared.problems import Conflict, NotFound, ValidationFailed, field_error, problem_type

log = logging.getLogger(__name__)


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"Customer {customer_id} does not exist.")


class EmailTaken(Conflict):
    """The email belongs to another customer (field `email`)."""

    type = problem_type("email-taken")

    def __init__(self, email: str) -> None:
        super().__init__(f"The email {email} belongs to another customer.", field_error("email", "is taken"))


class NothingToUpdate(ValidationFailed):
    def __init__(self) -> None:
        super().__init__("Nothing to update.", field_error("customer", "send at least one field"))


async def list_customers(limit: int, offset: int, after: Position | None) -> list[CustomerOut]:
    return await repository.list_customers(limit, offset, after)


async def count_customers() -> int:
    return await repository.count_customers()


async def get_customer(customer_id: int) -> CustomerOut:
    customer = await repository.get_customer(customer_id)
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


async def create_customer(data: CustomerIn) -> CustomerOut:
    try:
        return await repository.add_customer(data.name, data.address, data.email)
    except repository.EmailInUse:
        raise EmailTaken(str(data.email)) from None


async def update_customer(customer_id: int, patch: CustomerPatch) -> CustomerOut:
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise NothingToUpdate()
    try:
        customer = await repository.change_customer(customer_id, changes)
    except repository.EmailInUse:
        raise EmailTaken(changes["email"]) from None
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


async def delete_customer(customer_id: int) -> None:
    if not await repository.delete_customer(customer_id):
        raise CustomerNotFound(customer_id)


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # applied before: a redelivery or a copy
    UNKNOWN_CUSTOMER = "unknown customer"  # can never apply


async def apply_orders_created(events: list[OrderEvent]) -> dict[UUID, Outcome]:
    """Count each event's order once, all in one transaction; the events must have distinct ids."""
    results = await repository.record_orders_created(ORDER_CREATED, [(e.event_id, e.data.customer_id) for e in events])
    return {
        event_id: Outcome.APPLIED if applied else Outcome.DUPLICATE if customer_exists else Outcome.UNKNOWN_CUSTOMER
        for event_id, (applied, customer_exists) in results.items()
    }
