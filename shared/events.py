"""The events on the wire: one pydantic model for the producer, the consumer and the AsyncAPI document."""

from datetime import datetime
from decimal import Decimal
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.schemas import Id

SCHEMA_VERSION: Final = 1
ORDER_CREATED: Final = "order.created"
ORDER_STATUS_CHANGED: Final = "order.status_changed"
EventType = Literal["order.created", "order.status_changed"]


class OrderEventData(BaseModel):
    # Newer producers may add fields; consumers need only the ones they use.
    model_config = ConfigDict(extra="allow")

    order_id: Id
    customer_id: Id
    product_name: str | None = None
    quantity: int | None = None
    price: Decimal | None = None
    status: str | None = None
    previous_status: str | None = None


class OrderEvent(BaseModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: UUID
    event_type: EventType
    occurred_at: datetime
    data: OrderEventData
