"""The customer service's contract shapes: inputs reject unknown fields, outputs are what clients see."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from shared.schemas import INPUT, Email, Text200


class CustomerIn(BaseModel):
    model_config = INPUT

    name: Text200
    address: Text200
    email: Email | None = None


def _without_default(schema: dict) -> None:
    schema.pop("default", None)


class CustomerPatch(BaseModel):
    """Only the fields sent change; `orders_count` is not writable (unknown field → 422)."""

    model_config = ConfigDict(**INPUT, json_schema_extra={"minProperties": 1})  # {} changes nothing: 422

    # Absent means unchanged and null is rejected below, so the schema shows a plain optional string.
    name: Text200 | SkipJsonSchema[None] = Field(None, json_schema_extra=_without_default)
    address: Text200 | SkipJsonSchema[None] = Field(None, json_schema_extra=_without_default)
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
