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

from order.domain import INITIAL_STATUS, STATUSES
from shared.pagination import PageParams
from shared.schemas import INPUT, Id, Text200

CENT = Decimal("0.01")
MAX_QUANTITY = 10_000

Status = Literal[STATUSES]  # type: ignore[valid-type]  # the domain's list, as an enum in the schema

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
    model_config = INPUT

    customer_id: Id
    product_name: Text200
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
    price: Price
    status: Literal[INITIAL_STATUS] = INITIAL_STATUS  # type: ignore[valid-type]  # the domain's name


class StatusChange(BaseModel):
    model_config = INPUT
    status: Status


class CreateOrderBody(BaseModel):
    model_config = INPUT
    order: OrderIn


class ChangeStatusBody(BaseModel):
    model_config = INPUT
    order: StatusChange


class CustomerOrdersQuery(PageParams):
    status: Status | None = None


class OrderQuery(CustomerOrdersQuery):
    customer_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


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
    counts: dict[str, int] = Field(description="Orders held per customer id asked for, 0 included.")


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    product_name: str
    quantity: int
    price: Money
    status: Status
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form
    @property
    def total(self) -> Money:
        return self.price * self.quantity


class EmbeddedCustomer(BaseModel):
    """The customer as the customer service returned it while the order was validated."""

    id: int
    name: str
    address: str
    orders_count: int


class OrderCreatedOut(OrderOut):
    customer: EmbeddedCustomer
