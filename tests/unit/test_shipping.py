"""Tests for zones, business-day transit, rate cards and rate shopping (pure)."""

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.fulfilment import CarrierQuote
from domain.shipping import (
    DEFAULT_CARRIERS,
    CarrierProfile,
    RateCardEntry,
    Zone,
    add_business_days,
    quote_from_card,
    rank_quotes,
    zone_for,
)

FRIDAY = date(2024, 6, 7)
MONDAY = date(2024, 6, 10)


def quote(
    carrier: str, service: str, price: str, delivery: date, meets: bool, days: int = 2
) -> CarrierQuote:
    return CarrierQuote(
        carrier=carrier,
        service=service,
        price=Decimal(price),
        currency="EUR",
        transit_days=days,
        estimated_delivery=delivery,
        meets_promise=meets,
    )


def profile(*rates: RateCardEntry) -> CarrierProfile:
    return CarrierProfile(code="TEST", name="Test", currency="EUR", rates=list(rates))


def test_zones() -> None:
    assert zone_for("NL", "NL") == Zone.DOMESTIC
    assert zone_for(" nl", "NL ") == Zone.DOMESTIC
    assert zone_for("NL", "DE") == Zone.REGIONAL
    assert zone_for("DE", "CH") == Zone.REGIONAL
    assert zone_for("GB", "NO") == Zone.REGIONAL
    assert zone_for("NL", "US") == Zone.INTERNATIONAL
    assert zone_for("US", "CA") == Zone.INTERNATIONAL
    assert zone_for("US", "US") == Zone.DOMESTIC


def test_business_days_skip_the_weekend() -> None:
    assert FRIDAY.weekday() == 4
    assert add_business_days(FRIDAY, 1) == MONDAY
    assert add_business_days(FRIDAY, 3) == date(2024, 6, 12)
    assert add_business_days(date(2024, 6, 8), 1) == MONDAY  # Saturday
    assert add_business_days(MONDAY, 5) == date(2024, 6, 17)
    assert add_business_days(MONDAY, 0) == MONDAY
    with pytest.raises(ValueError):
        add_business_days(MONDAY, -1)


def test_quote_from_card_counts_business_days_over_a_weekend() -> None:
    card = profile(
        RateCardEntry(
            service="standard",
            zone=Zone.DOMESTIC,
            base=Decimal("4.95"),
            per_unit=Decimal("0.35"),
            transit_days=2,
        )
    )
    [offer] = quote_from_card(card, "NL", "NL", 3, FRIDAY, promised_by=MONDAY)
    assert offer.estimated_delivery == date(2024, 6, 11)  # Tuesday, not Sunday
    assert offer.meets_promise is False
    assert offer.price == Decimal("6.00")
    assert offer.currency == "EUR"
    assert offer.transit_days == 2
    [on_time] = quote_from_card(card, "NL", "NL", 3, FRIDAY, promised_by=date(2024, 6, 11))
    assert on_time.meets_promise is True


def test_quote_from_card_rounds_price_and_filters_by_zone() -> None:
    card = profile(
        RateCardEntry(
            service="standard",
            zone=Zone.REGIONAL,
            base=Decimal("1.001"),
            per_unit=Decimal("0.0025"),
            transit_days=3,
        ),
        RateCardEntry(
            service="express",
            zone=Zone.REGIONAL,
            base=Decimal("9"),
            per_unit=Decimal("0"),
            transit_days=1,
        ),
        RateCardEntry(
            service="standard",
            zone=Zone.DOMESTIC,
            base=Decimal("2"),
            per_unit=Decimal("0"),
            transit_days=1,
        ),
    )
    offers = quote_from_card(card, "NL", "BE", 2, MONDAY, MONDAY)
    assert {(o.service, o.price) for o in offers} == {
        ("standard", Decimal("1.01")),
        ("express", Decimal("9.00")),
    }
    assert quote_from_card(card, "NL", "US", 1, MONDAY, MONDAY) == []
    with pytest.raises(ValueError):
        quote_from_card(card, "NL", "BE", 0, MONDAY, MONDAY)


def test_profile_rejects_duplicate_rates_and_unknown_currency() -> None:
    entry = RateCardEntry(
        service="s", zone=Zone.DOMESTIC, base=Decimal(1), per_unit=Decimal(0), transit_days=1
    )
    with pytest.raises(ValidationError):
        profile(entry, entry)
    with pytest.raises(ValidationError):
        CarrierProfile(code="X", name="X", currency="XXX", rates=[entry])


def test_cheapest_meeting_the_promise_wins() -> None:
    late_but_cheapest = quote("PARCELCO", "standard", "3.00", date(2024, 6, 14), meets=False)
    on_time_expensive = quote("GLOBEX", "express", "15.00", date(2024, 6, 11), meets=True)
    on_time_cheap = quote("SWIFTPOST", "standard", "7.00", date(2024, 6, 12), meets=True)
    ranked = rank_quotes([late_but_cheapest, on_time_expensive, on_time_cheap])
    assert ranked == [on_time_cheap, on_time_expensive, late_but_cheapest]


def test_late_quotes_ranked_after_by_earliest_delivery_then_price() -> None:
    on_time = quote("GLOBEX", "express", "99.00", date(2024, 6, 11), meets=True)
    late_soon = quote("SWIFTPOST", "standard", "9.00", date(2024, 6, 13), meets=False)
    late_soon_cheaper = quote("PARCELCO", "standard", "8.00", date(2024, 6, 13), meets=False)
    late_later = quote("PARCELCO", "economy", "1.00", date(2024, 6, 20), meets=False)
    ranked = rank_quotes([late_later, late_soon, on_time, late_soon_cheaper])
    assert ranked == [on_time, late_soon_cheaper, late_soon, late_later]


def test_ties_break_on_speed_then_carrier_then_service_and_order_does_not_matter() -> None:
    slow = quote("AAA", "standard", "5.00", date(2024, 6, 13), meets=True, days=3)
    fast = quote("ZZZ", "standard", "5.00", date(2024, 6, 11), meets=True, days=1)
    same_b = quote("BBB", "b", "5.00", date(2024, 6, 13), meets=True, days=3)
    same_a = quote("BBB", "a", "5.00", date(2024, 6, 13), meets=True, days=3)
    expected = [fast, slow, same_a, same_b]
    assert rank_quotes([same_b, slow, same_a, fast]) == expected
    assert rank_quotes(list(reversed(expected))) == expected
    assert rank_quotes([]) == []


def test_default_carriers() -> None:
    codes = {p.code: p for p in DEFAULT_CARRIERS}
    assert set(codes) == {"PARCELCO", "SWIFTPOST", "GLOBEX"}
    for carrier in DEFAULT_CARRIERS:
        assert carrier.currency == "EUR"
        zones = {entry.zone for entry in carrier.rates}
        assert {Zone.DOMESTIC, Zone.REGIONAL} <= zones
    assert codes["PARCELCO"].services == {"standard"}
    assert codes["SWIFTPOST"].services >= {"standard", "express"}
    assert "express" in codes["GLOBEX"].services
    international = [
        q
        for p in DEFAULT_CARRIERS
        for q in quote_from_card(p, "NL", "US", 2, MONDAY, date(2024, 6, 17))
    ]
    assert {q.carrier for q in international if q.meets_promise} == {"GLOBEX"}


def test_default_carriers_domestic_rate_shopping() -> None:
    quotes = [
        q
        for p in DEFAULT_CARRIERS
        for q in quote_from_card(p, "NL", "NL", 2, MONDAY, date(2024, 6, 20))
    ]
    assert rank_quotes(quotes)[0].carrier == "PARCELCO"  # cheap when time allows
    rush = [
        q
        for p in DEFAULT_CARRIERS
        for q in quote_from_card(p, "NL", "NL", 2, MONDAY, date(2024, 6, 11))
    ]
    best = rank_quotes(rush)[0]
    assert (best.carrier, best.service) == ("SWIFTPOST", "express")
    assert best.meets_promise
