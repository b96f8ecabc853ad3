"""The events on the wire: one pydantic model for the producer, the consumer and the AsyncAPI document."""

from datetime import datetime
from decimal import Decimal
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import Id

SCHEMA_VERSION: Final = 1
ORDER_CREATED: Final = "order.created"
ORDER_STATUS_CHANGED: Final = "order.status_changed"
EventType = Literal["order.created", "order.status_changed"]


class OrderEventData(BaseModel):
    """The order as it was when the event occurred."""

    # Newer producers may add fields; consumers need only the ones they use.
    model_config = ConfigDict(extra="allow")

    order_id: Id = Field(description="The order's id in the order service.")
    customer_id: Id = Field(description="The customer who placed it.")
    product_name: str | None = Field(None, description="What was ordered.")
    quantity: int | None = Field(None, description="How many.")
    price: Decimal | None = Field(None, description="The unit price, a decimal string with 2 places.")
    status: str | None = Field(None, description="The order's status after the event.")
    previous_status: str | None = Field(None, description="On a status change: the status it left.")


class OrderEvent(BaseModel):
    """An order event, the body of every message on the events exchange."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="1; a breaking change would be a new version.")
    event_id: UUID = Field(
        description="Unique per event, and the same on a re-publish: the consumer's deduplication key."
    )
    event_type: EventType = Field(description="What happened; also the routing key.")
    occurred_at: datetime = Field(description="When the order changed (UTC).")
    data: OrderEventData = Field(description="The order.")
