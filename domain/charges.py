"""The shipping charge the customer pays, from a price rule kept as data (`charges.json`).

Rules: a flat price per zone (`domain.shipping.zone_for`, the farthest zone when the order
ships from several warehouses), or the booked carrier rates plus a margin. Either can be
free from a threshold on the net goods total. How the charge is taxed is not decided here:
`domain.invoicing` taxes it like the goods (split in proportion to their net per tax class).
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from domain.money import CURRENCY_EXPONENT, round_half_up
from domain.restocking import RestockingPolicy
from domain.shipping import Zone, zone_for

_ZONE_ORDER = (Zone.DOMESTIC, Zone.REGIONAL, Zone.INTERNATIONAL)


class FlatPerZone(BaseModel):
    """One price per zone, whatever the parcel."""

    kind: Literal["flat_per_zone"] = "flat_per_zone"
    prices: dict[Zone, Decimal] = Field(description="net price per zone")

    @model_validator(mode="after")
    def _every_zone(self) -> "FlatPerZone":
        missing = [zone.value for zone in Zone if zone not in self.prices]
        if missing:
            raise ValueError(f"no flat price for {', '.join(missing)}")
        if any(price < 0 for price in self.prices.values()):
            raise ValueError("flat prices must not be negative")
        return self


class BookedRatePlusMargin(BaseModel):
    """What the carriers charged us, plus a margin in % and a fixed amount."""

    kind: Literal["booked_rate_plus_margin"] = "booked_rate_plus_margin"
    margin_percent: Decimal = Field(default=Decimal(0), ge=0)
    margin_fixed: Decimal = Field(default=Decimal(0), ge=0)


ShippingRule = Annotated[FlatPerZone | BookedRatePlusMargin, Field(discriminator="kind")]


class ShippingPolicy(BaseModel):
    """The rule and the free-shipping threshold for orders in one currency."""

    rule: ShippingRule
    free_from: Decimal | None = Field(
        default=None, ge=0, description="free when the net goods total is at least this"
    )


class ChargesConfig(BaseModel):
    """Everything `charges.json` configures: shipping per currency and the restocking fee."""

    shipping: dict[str, ShippingPolicy]
    restocking: RestockingPolicy = Field(default_factory=RestockingPolicy)

    @model_validator(mode="after")
    def _traded(self) -> "ChargesConfig":
        for currency in self.shipping:
            if currency not in CURRENCY_EXPONENT:
                raise ValueError(f"shipping policy for {currency}, which is not traded")
        return self


class ShippingCharge(BaseModel):
    """The net shipping charge of an order and how it came about (for the invoice)."""

    net: Decimal = Field(ge=0)
    currency: str
    basis: str = Field(description='e.g. "flat REGIONAL", "free from 150.00 EUR"')


def farthest_zone(origins: Sequence[str], destination_country: str) -> Zone:
    """The zone of the longest leg: an order shipping from two warehouses pays the farther.

    Raises:
        ValueError: no origin.
    """
    if not origins:
        raise ValueError("a zone needs at least one origin country")
    zones = [zone_for(origin, destination_country) for origin in origins]
    return max(zones, key=_ZONE_ORDER.index)


def shipping_charge(
    policy: ShippingPolicy,
    currency: str,
    goods_net: Decimal,
    destination_country: str,
    origins: Sequence[str],
    booked: Sequence[Decimal] = (),
) -> ShippingCharge:
    """The order's net shipping charge, rounded half up to the currency.

    Args:
        policy: The shipping policy of the order's currency.
        currency: The order's currency.
        goods_net: Net total of the goods billed (decides free shipping).
        destination_country: Where the order goes.
        origins: Countries of the warehouses it ships from.
        booked: Carrier prices of its shipments, already in `currency` (booked-rate rule).

    Raises:
        ValueError: the booked-rate rule without a booked price, or flat per zone without an
            origin.
    """
    free = _free(policy, currency, goods_net)
    if free is not None:
        return free
    rule = policy.rule
    if isinstance(rule, FlatPerZone):
        zone = farthest_zone(origins, destination_country)
        net, basis = rule.prices[zone], f"flat {zone.value}"
    else:
        if not booked:
            raise ValueError("the booked-rate rule needs the booked carrier prices")
        cost = sum(booked, Decimal(0))
        net = cost * (1 + rule.margin_percent / 100) + rule.margin_fixed
        basis = f"booked {cost} {currency} + {rule.margin_percent} % + {rule.margin_fixed}"
    return ShippingCharge(net=round_half_up(net, currency), currency=currency, basis=basis)


def dearest_charge(
    policy: ShippingPolicy, currency: str, goods_net: Decimal, booked_reserve: Decimal
) -> ShippingCharge:
    """The most `policy` can charge an order of `goods_net` before anything is booked: nothing
    from the free threshold on, else the dearest flat price, or under the booked-rate rule
    `booked_reserve` (a share) of the goods."""
    free = _free(policy, currency, goods_net)
    if free is not None:
        return free
    rule = policy.rule
    if isinstance(rule, FlatPerZone):
        dearest = max(rule.prices.values())
    else:
        dearest = goods_net * booked_reserve
    return ShippingCharge(net=round_half_up(dearest, currency), currency=currency, basis="estimate")


def _free(policy: ShippingPolicy, currency: str, goods_net: Decimal) -> ShippingCharge | None:
    if policy.free_from is None or goods_net < policy.free_from:
        return None
    return ShippingCharge(
        net=round_half_up(Decimal(0), currency),
        currency=currency,
        basis=f"free from {policy.free_from} {currency}",
    )
