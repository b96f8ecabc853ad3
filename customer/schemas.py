"""The customer service's contract shapes: inputs reject unknown fields, outputs are what clients see."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from shared.schemas import INPUT, Email, Text200


class CustomerIn(BaseModel):
    """A new customer."""

    model_config = INPUT

    name: Text200 = Field(description="The customer's name, 1 to 200 characters, not blank.")
    address: Text200 = Field(description="The postal address, 1 to 200 characters, not blank.")
    email: Email | None = Field(None, description="Optional; unique among customers when given.")


def _without_default(schema: dict) -> None:
    schema.pop("default", None)


class CustomerPatch(BaseModel):
    """Only the fields sent change; `orders_count` is not writable (unknown field → 422)."""

    model_config = ConfigDict(**INPUT, json_schema_extra={"minProperties": 1})  # {} changes nothing: 422

    # Absent means unchanged and null is rejected below, so the schema shows a plain optional string.
    name: Text200 | SkipJsonSchema[None] = Field(
        None, description="A new name; absent leaves it as it is.", json_schema_extra=_without_default
    )
    address: Text200 | SkipJsonSchema[None] = Field(
        None, description="A new address; absent leaves it as it is.", json_schema_extra=_without_default
    )
    email: Email | None = Field(None, description="A new email, or null to remove it; absent leaves it as it is.")

    @field_validator("name", "address")
    @classmethod
    def not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("may not be null")
        return value


class CreateCustomerBody(BaseModel):
    """The body of `POST /customers`."""

    model_config = INPUT
    customer: CustomerIn = Field(description="The customer to create.")


class UpdateCustomerBody(BaseModel):
    """The body of `PATCH /customers/{id}`."""

    model_config = INPUT
    customer: CustomerPatch = Field(description="The fields to change.")


class CustomerOut(BaseModel):
    """A customer as the service returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The customer's id, given by the service.")
    name: str = Field(description="The customer's name.")
    address: str = Field(description="The postal address.")
    email: str | None = Field(description="The email, or null when none was given.")
    orders_count: int = Field(
        description="Orders placed for this customer, counted from `order.created` events (read-only)."
    )
    created_at: datetime = Field(description="When the customer was created (UTC).")
    updated_at: datetime = Field(description="When the customer last changed (UTC).")
