"""The customer service's contract shapes: inputs reject unknown fields, outputs are what clients see."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator

from shared.schemas import Email, Text200

INPUT = ConfigDict(extra="forbid")


class CustomerIn(BaseModel):
    model_config = INPUT

    name: Text200
    address: Text200
    email: Email | None = None


class CustomerPatch(BaseModel):
    """Only the fields sent change; `orders_count` is not writable (unknown field → 422)."""

    model_config = INPUT

    name: Text200 | None = None
    address: Text200 | None = None
    email: Email | None = None

    @field_validator("name", "address")
    @classmethod
    def not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("may not be null")
        return value


class CreateCustomerBody(BaseModel):
    model_config = INPUT
    customer: CustomerIn


class UpdateCustomerBody(BaseModel):
    model_config = INPUT
    customer: CustomerPatch


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    email: str | None
    orders_count: int
    created_at: datetime
    updated_at: datetime
