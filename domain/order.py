"""The canonical order: one contract for every channel, as placed by `orderflow place`."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from domain.money import CURRENCY_EXPONENT, has_valid_precision
from domain.statuses import Channel, FulfilmentPolicy

OrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,39}$")]

PLACED = {"placed": True}
"""Validation context of an order as a user places it (`parse_order`): the README's rules in
full. Without it (a workflow payload, an order already recorded) the model stays lenient, so
every history already written still deserializes."""


def _placed(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("placed"))


class Address(BaseModel):
    """Where the goods go."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=120)
    postal_code: str = Field(min_length=1, max_length=16)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class OrderLine(BaseModel):
    """One SKU, a whole quantity and the unit price the customer was quoted."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(gt=0, le=100_000)
    unit_price: Annotated[
        Decimal,
        # What a sender must write (numbers are refused where orders are placed).
        WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}),
    ] = Field(ge=0, description='decimal string, e.g. "12.50"')

    @field_validator("quantity", mode="before")
    @classmethod
    def _whole_quantity(cls, value: object, info: ValidationInfo) -> object:
        if _placed(info) and type(value) is not int:
            raise ValueError(f"must be a JSON integer such as 2, not {value!r}")
        return value

    @field_validator("unit_price", mode="before")
    @classmethod
    def _no_float_money(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, float):
            raise ValueError('money must be a decimal string such as "12.50", not a float')
        if _placed(info) and not isinstance(value, str):
            raise ValueError(f'money must be a decimal string such as "12.50", not {value!r}')
        return value


class Order(BaseModel):
    """An order normalised from any channel; the input of `OrderWorkflow`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_id: OrderId
    channel: Channel
    customer_id: str = Field(min_length=1, max_length=64)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[OrderLine] = Field(min_length=1, max_length=200)
    ship_to: Address
    promised_days: int | None = Field(default=None, gt=0, le=90)
    promised_date: date | None = None
    purchase_order: str | None = Field(default=None, max_length=64)
    submitted_by: str | None = Field(default=None, max_length=64)
    contact_email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="who is told about this order; None: the account's address",
    )
    fulfilment_policy: FulfilmentPolicy | None = Field(
        default=None, description="None: the customer's default policy"
    )
    manual_review: bool = Field(default=False, description="put the order on a review hold")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Order":
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(
                f"currency {self.currency} is not traded (known: "
                f"{', '.join(sorted(CURRENCY_EXPONENT))})"
            )
        for line in self.lines:
            if not has_valid_precision(line.unit_price, self.currency):
                raise ValueError(
                    f"unit_price {line.unit_price} of {line.sku} has more decimals "
                    f"than {self.currency} allows"
                )
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one line only")
        if self.promised_days is None and self.promised_date is None:
            raise ValueError("give promised_days or promised_date")
        if _placed(info) and self.promised_days is not None and self.promised_date is not None:
            raise ValueError("give promised_days or promised_date, not both")
        return self

    @property
    def total(self) -> Decimal:
        """Sum of the lines, before shipping."""
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal(0))

    def quantity_of(self, sku: str) -> int:
        """Ordered quantity of one SKU (0 when not on the order)."""
        return sum(line.quantity for line in self.lines if line.sku == sku)


def parse_order(data: Any) -> Order:
    """An order as a user places it (a decoded JSON object): the README's rules in full.

    A quantity must be a JSON integer (not `2.0`, `"2"` or `true`), money a decimal string
    (not a number), and exactly one of `promised_days` / `promised_date`.

    Raises:
        pydantic.ValidationError: the first problem names its field, e.g. `lines.0.quantity`.
    """
    return Order.model_validate(data, context=PLACED)
