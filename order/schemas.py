"""The order service's contract shapes. Money is Decimal in, a 2-place string out."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    computed_field,
)
from typing_extensions import TypeAliasType

from order.domain import INITIAL_STATUS, STATUSES
from shared.pagination import PageParams
from shared.schemas import INPUT, Id, Text200

CENT = Decimal("0.01")
MAX_QUANTITY = 10_000

# The domain's list, as one named enum in the schema: one type in a generated client, not one per use.
OrderStatus = TypeAliasType(
    "OrderStatus",
    Annotated[
        Literal[STATUSES],  # type: ignore[valid-type]  # the domain's tuple
        Field(description="Where an order is in its lifecycle: created → paid → shipped → delivered, or cancelled."),
    ],
)

# A price string is plain digits: no exponent, sign, spaces or underscores that Decimal() would take,
# and not zero. [0-9], not \d: Python's \d also matches other scripts' digits.
PRICE_STRING = r"^(?=.*[1-9])[0-9]{1,10}(\.[0-9]{1,2})?$"
_PRICE_STRING = re.compile(PRICE_STRING)


def _plain_price_string(value: object) -> object:
    if isinstance(value, str) and not _PRICE_STRING.match(value):
        raise ValueError("must be a positive decimal like '1200.00': digits, at most 2 decimal places")
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_plain_price_string),
    Field(gt=0, max_digits=12, decimal_places=2),
    AfterValidator(lambda value: value.quantize(CENT)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 9999999999.99, "multipleOf": 0.01},
                {"type": "string", "pattern": PRICE_STRING, "examples": ["1200.00"]},
            ]
        },
        mode="validation",
    ),
]
Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: str(value.quantize(CENT)), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2}$", "examples": ["1200.00"]}, mode="serialization"),
]


class OrderIn(BaseModel):
    """A new order."""

    model_config = INPUT

    customer_id: Id = Field(description="An existing customer's id; the customer service is asked.")
    product_name: Text200 = Field(description="What is ordered, 1 to 200 characters, not blank.")
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)] = Field(
        description=f"How many, 1 to {MAX_QUANTITY}."
    )
    price: Price = Field(description="The unit price: a number or a decimal string, above 0, at most 2 decimals.")
    status: Literal[INITIAL_STATUS] = Field(  # type: ignore[valid-type]  # the domain's name
        INITIAL_STATUS, description="Optional; a new order is always `created`."
    )


class StatusChange(BaseModel):
    """The status to move an order to."""

    model_config = INPUT
    status: OrderStatus = Field(description="The next status; the lifecycle decides which are allowed.")


class CreateOrderBody(BaseModel):
    """The body of `POST /orders`."""

    model_config = INPUT
    order: OrderIn = Field(description="The order to place.")


class ChangeStatusBody(BaseModel):
    """The body of `PATCH /orders/{id}`."""

    model_config = INPUT
    order: StatusChange = Field(description="The change.")


class CustomerOrdersQuery(PageParams):
    status: OrderStatus | None = Field(None, description="Only orders in this status.")


class OrderQuery(CustomerOrdersQuery):
    customer_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = Field(
        None, description="Only this customer's orders."
    )


MAX_COUNTED_CUSTOMERS = 200  # customer.ops reconcile asks for a page of this many (its RECONCILE_PAGE)


class OrderCountsQuery(BaseModel):
    customer_id: Annotated[
        list[Annotated[int, Field(ge=1, le=2**31 - 1)]],
        Field(
            min_length=1,
            max_length=MAX_COUNTED_CUSTOMERS,
            description=f"Repeat it: `?customer_id=1&customer_id=2`, 1 to {MAX_COUNTED_CUSTOMERS} ids.",
        ),
    ]


class OrderCountsOut(BaseModel):
    """Orders held per customer."""

    counts: dict[str, int] = Field(description="Orders held per customer id asked for, 0 included.")


class OrderOut(BaseModel):
    """An order as the service returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The order's id, given by the service.")
    customer_id: int = Field(description="The customer who placed it.")
    product_name: str = Field(description="What was ordered.")
    quantity: int = Field(description="How many.")
    price: Money = Field(description="The unit price, a decimal string with 2 places.")
    status: OrderStatus = Field(description="Where the order is in its lifecycle.")
    created_at: datetime = Field(description="When the order was placed (UTC).")
    updated_at: datetime = Field(description="When its status last changed (UTC).")

    @computed_field(description="`price` times `quantity`, a decimal string with 2 places.")  # type: ignore[prop-decorator]
    @property
    def total(self) -> Money:
        return self.price * self.quantity


class EmbeddedCustomer(BaseModel):
    """The customer as the customer service returned it while the order was validated."""

    id: int = Field(description="The customer's id.")
    name: str = Field(description="The customer's name.")
    address: str = Field(description="The customer's address.")
    orders_count: int = Field(description="The customer's orders counted so far (this one may not be yet).")


class OrderCreatedOut(OrderOut):
    """A new order, with its customer as the customer service returned it (not stored with the order)."""

    customer: EmbeddedCustomer = Field(description="The customer, as validated.")
