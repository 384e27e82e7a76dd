"""The canonical order: one contract for every channel, as placed by `orderflow place`."""

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.money import CURRENCY_EXPONENT, has_valid_precision
from domain.statuses import Channel, FulfilmentPolicy

OrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,39}$")]


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
    unit_price: Decimal = Field(ge=0, description='decimal string, e.g. "12.50"')

    @field_validator("unit_price", mode="before")
    @classmethod
    def _no_float_money(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError('money must be a decimal string such as "12.50", not a float')
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
    fulfilment_policy: FulfilmentPolicy | None = Field(
        default=None, description="None: the customer's default policy"
    )
    manual_review: bool = Field(default=False, description="put the order on a review hold")

    @model_validator(mode="after")
    def _consistent(self) -> "Order":
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
        return self

    @property
    def total(self) -> Decimal:
        """Sum of the lines, before shipping."""
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal(0))

    def quantity_of(self, sku: str) -> int:
        """Ordered quantity of one SKU (0 when not on the order)."""
        return sum(line.quantity for line in self.lines if line.sku == sku)
