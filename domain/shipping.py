"""Carrier rate cards, zones, business-day transit and rate shopping: pure, no I/O."""

from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.fulfilment import CarrierQuote
from domain.money import CURRENCY_EXPONENT, round_money


class Zone(StrEnum):
    """How far a parcel travels, as carriers price it."""

    DOMESTIC = "DOMESTIC"
    REGIONAL = "REGIONAL"
    INTERNATIONAL = "INTERNATIONAL"


# EU member states, the rest of the EEA (IS, LI, NO), plus Switzerland and the United Kingdom:
# carriers price all of these as one road-served region.
EUROPEAN_REGION: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "IS", "LI", "NO",
        "CH", "GB",
    }
)  # fmt: skip


def zone_for(origin_country: str, destination_country: str) -> Zone:
    """Zone of a shipment between two ISO 3166-1 alpha-2 countries (case-insensitive).

    Same country is DOMESTIC; both in the EU/EEA + CH + GB region is REGIONAL; anything else
    is INTERNATIONAL.
    """
    origin = origin_country.strip().upper()
    destination = destination_country.strip().upper()
    if origin == destination:
        return Zone.DOMESTIC
    if origin in EUROPEAN_REGION and destination in EUROPEAN_REGION:
        return Zone.REGIONAL
    return Zone.INTERNATIONAL


def add_business_days(start: date, days: int) -> date:
    """The date `days` business days (Mon-Fri) after `start`; weekends are not counted.

    A Friday plus one business day is the next Monday; a Saturday plus one is also Monday.
    Zero days returns `start` unchanged.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


class RateCardEntry(BaseModel):
    """The price and transit time of one service into one zone."""

    service: str = Field(min_length=1)
    zone: Zone
    base: Decimal = Field(ge=0, description="price per parcel")
    per_unit: Decimal = Field(ge=0, description="price per item unit shipped")
    transit_days: int = Field(ge=1, description="business days from ship date to delivery")


class CarrierProfile(BaseModel):
    """A carrier as data: its code, currency, rate card and tracking-number format."""

    code: str = Field(min_length=1, max_length=16)
    name: str
    currency: str
    rates: list[RateCardEntry]
    tracking_prefix: str = Field(default="", description="defaults to the code's first 2 letters")
    tracking_digits: int = Field(default=10, ge=6, le=30)

    @model_validator(mode="after")
    def _check(self) -> "CarrierProfile":
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(f"unsupported currency {self.currency!r}")
        seen: set[tuple[str, Zone]] = set()
        for entry in self.rates:
            key = (entry.service, entry.zone)
            if key in seen:
                raise ValueError(f"{self.code}: duplicate rate for {entry.service} {entry.zone}")
            seen.add(key)
        return self

    @property
    def services(self) -> set[str]:
        """Every service name on the rate card."""
        return {entry.service for entry in self.rates}


def quote_from_card(
    profile: CarrierProfile,
    origin_country: str,
    destination_country: str,
    units: int,
    ship_date: date,
    promised_by: date,
) -> list[CarrierQuote]:
    """One quote per service the carrier offers into the shipment's zone (none if it doesn't).

    Price is base + per_unit * units, rounded to the currency's minor unit; the estimated
    delivery counts transit days as business days from `ship_date`.
    """
    if units < 1:
        raise ValueError("units must be at least 1")
    zone = zone_for(origin_country, destination_country)
    quotes: list[CarrierQuote] = []
    for entry in profile.rates:
        if entry.zone != zone:
            continue
        delivery = add_business_days(ship_date, entry.transit_days)
        quotes.append(
            CarrierQuote(
                carrier=profile.code,
                service=entry.service,
                price=round_money(entry.base + entry.per_unit * units, profile.currency),
                currency=profile.currency,
                transit_days=entry.transit_days,
                estimated_delivery=delivery,
                meets_promise=delivery <= promised_by,
            )
        )
    return quotes


def rank_quotes(quotes: list[CarrierQuote]) -> list[CarrierQuote]:
    """Rate shopping order, best first; deterministic for any input order.

    Quotes that meet the promise come first, cheapest first (ties: earlier delivery, fewer
    transit days, carrier code, service). Then the ones that miss it, earliest delivery first
    (ties: cheapest, carrier code, service). Prices are compared as numbers, so all quotes are
    expected in one currency.
    """
    on_time = sorted(
        (q for q in quotes if q.meets_promise),
        key=lambda q: (q.price, q.estimated_delivery, q.transit_days, q.carrier, q.service),
    )
    late = sorted(
        (q for q in quotes if not q.meets_promise),
        key=lambda q: (q.estimated_delivery, q.price, q.transit_days, q.carrier, q.service),
    )
    return on_time + late


def _rate(service: str, zone: Zone, base: str, per_unit: str, days: int) -> RateCardEntry:
    return RateCardEntry(
        service=service,
        zone=zone,
        base=Decimal(base),
        per_unit=Decimal(per_unit),
        transit_days=days,
    )


# Three simulated carriers, EUR rate cards in the range of European parcel services.
DEFAULT_CARRIERS: list[CarrierProfile] = [
    CarrierProfile(
        code="PARCELCO",
        name="ParcelCo Economy",
        currency="EUR",
        tracking_prefix="PC",
        tracking_digits=10,
        rates=[
            _rate("standard", Zone.DOMESTIC, "4.95", "0.35", 3),
            _rate("standard", Zone.REGIONAL, "9.45", "0.60", 6),
        ],
    ),
    CarrierProfile(
        code="SWIFTPOST",
        name="SwiftPost",
        currency="EUR",
        tracking_prefix="SP",
        tracking_digits=12,
        rates=[
            _rate("standard", Zone.DOMESTIC, "5.95", "0.40", 2),
            _rate("express", Zone.DOMESTIC, "9.95", "0.50", 1),
            _rate("standard", Zone.REGIONAL, "11.50", "0.75", 4),
            _rate("express", Zone.REGIONAL, "19.90", "0.90", 2),
            _rate("standard", Zone.INTERNATIONAL, "29.90", "2.00", 12),
        ],
    ),
    CarrierProfile(
        code="GLOBEX",
        name="Globex Worldwide Express",
        currency="EUR",
        tracking_prefix="GX",
        tracking_digits=11,
        rates=[
            _rate("express", Zone.DOMESTIC, "12.50", "0.60", 1),
            _rate("express", Zone.REGIONAL, "24.00", "1.10", 2),
            _rate("economy", Zone.INTERNATIONAL, "34.00", "1.80", 6),
            _rate("express", Zone.INTERNATIONAL, "49.00", "2.50", 3),
        ],
    ),
]
