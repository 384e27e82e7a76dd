"""Tests for the shipping charge rules and the restocking fee on returns."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.charges import (
    BookedRatePlusMargin,
    ChargesConfig,
    FlatPerZone,
    ShippingPolicy,
    farthest_zone,
    shipping_charge,
)
from domain.restocking import (
    reason_code,
    refunds_shipping,
    restocking_fees,
    whole_order_returned,
)
from domain.returns import Disposition, InspectionLine
from domain.shipping import Zone

CONFIG = ChargesConfig.model_validate_json(
    (Path(__file__).parents[2] / "domain/data/charges.json").read_text()
)
EUR = CONFIG.shipping["EUR"]
POLICY = CONFIG.restocking


def charge(goods: str, destination: str = "DE", *origins: str) -> tuple[Decimal, str]:
    result = shipping_charge(EUR, "EUR", Decimal(goods), destination, origins or ("NL",))
    return result.net, result.basis


def test_shipping_is_free_from_the_threshold_and_charged_below_it() -> None:
    assert charge("149.99") == (Decimal("7.95"), "flat REGIONAL")
    assert charge("150.00") == (Decimal("0.00"), "free from 150.00 EUR")
    assert charge("1200.00") == (Decimal("0.00"), "free from 150.00 EUR")


def test_the_flat_price_follows_the_zone_of_the_farthest_warehouse() -> None:
    assert charge("20.00", "NL", "NL") == (Decimal("4.95"), "flat DOMESTIC")
    assert charge("20.00", "US", "NL") == (Decimal("24.95"), "flat INTERNATIONAL")
    assert charge("20.00", "DE", "DE", "US") == (Decimal("24.95"), "flat INTERNATIONAL")
    assert farthest_zone(["DE", "NL"], "DE") is Zone.REGIONAL
    with pytest.raises(ValueError, match="at least one origin"):
        farthest_zone([], "DE")


def test_booked_rate_plus_margin_rounds_half_up() -> None:
    policy = ShippingPolicy(
        rule=BookedRatePlusMargin(margin_percent=Decimal(10), margin_fixed=Decimal("1.00"))
    )
    # (11.50 + 9.45) * 1.10 + 1.00 = 24.045
    result = shipping_charge(
        policy, "EUR", Decimal(80), "DE", ["NL"], [Decimal("11.50"), Decimal("9.45")]
    )
    assert result.net == Decimal("24.05")
    assert result.basis == "booked 20.95 EUR + 10 % + 1.00"
    with pytest.raises(ValueError, match="booked carrier prices"):
        shipping_charge(policy, "EUR", Decimal(80), "DE", ["NL"])


def test_a_policy_is_checked_when_loaded() -> None:
    with pytest.raises(ValidationError, match="no flat price for INTERNATIONAL"):
        FlatPerZone(prices={Zone.DOMESTIC: Decimal(1), Zone.REGIONAL: Decimal(2)})
    with pytest.raises(ValidationError, match="XXX, which is not traded"):
        ChargesConfig.model_validate({"shipping": {"XXX": EUR.model_dump()}})
    assert ChargesConfig.model_validate_json(CONFIG.model_dump_json()) == CONFIG


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("defective", "defective"),
        ("arrived scratched", "defective"),
        ("Screen does not work", "defective"),
        ("wrong_item", "wrong_item"),
        ("Wrong item sent", "wrong_item"),
        ("I changed my mind", "changed_mind"),
        ("too big", "other"),
        ("unbroken seal", "other"),  # whole words only
    ],
)
def test_a_free_text_reason_gets_its_code(reason: str, code: str) -> None:
    assert reason_code(reason, POLICY) == code


def units(sku: str, quantity: int, disposition: str) -> InspectionLine:
    return InspectionLine(sku=sku, quantity=quantity, disposition=Disposition(disposition))


PRICES = {"KB-100": Decimal("49.90"), "MS-200": Decimal("19.95")}


def test_the_restocking_fee_depends_on_disposition_and_reason() -> None:
    inspected = [units("KB-100", 2, "restock"), units("MS-200", 1, "refurbish")]
    assert restocking_fees(inspected, PRICES, "too big", POLICY, "EUR") == {
        "KB-100": Decimal("9.98"),  # 10 % of 99.80
        "MS-200": Decimal("2.99"),  # 15 % of 19.95 = 2.9925
    }
    # changed_mind overrides dispose: 50 % instead of 25 %
    disposed = [units("KB-100", 1, "dispose")]
    assert restocking_fees(disposed, PRICES, "changed my mind", POLICY, "EUR") == {
        "KB-100": Decimal("24.95")
    }
    assert restocking_fees(disposed, PRICES, "too big", POLICY, "EUR") == {
        "KB-100": Decimal("12.48")  # 12.475 half up
    }


def test_the_fee_of_one_sku_is_rounded_once_over_its_dispositions() -> None:
    # 10 % of 19.95 + 15 % of 19.95 = 1.995 + 2.9925 = 4.9875 -> 4.99 (not 2.00 + 2.99)
    split = [units("MS-200", 1, "restock"), units("MS-200", 1, "refurbish")]
    assert restocking_fees(split, PRICES, "too big", POLICY, "EUR") == {"MS-200": Decimal("4.99")}


@pytest.mark.parametrize("reason", ["defective", "arrived broken", "wrong item"])
def test_no_restocking_fee_for_a_defect_or_a_wrong_item(reason: str) -> None:
    inspected = [units("KB-100", 2, "dispose"), units("MS-200", 1, "restock")]
    fees = restocking_fees(inspected, PRICES, reason, POLICY, "EUR")
    assert fees == {"KB-100": Decimal("0.00"), "MS-200": Decimal("0.00")}


def test_shipping_comes_back_only_when_the_whole_order_returns_for_a_defect() -> None:
    invoiced = {"KB-100": 2, "MS-200": 1}
    assert whole_order_returned(invoiced, {"KB-100": 2, "MS-200": 1})
    assert not whole_order_returned(invoiced, {"KB-100": 2})
    assert refunds_shipping(["defective"], True, POLICY)
    assert refunds_shipping(["faulty", "arrived scratched"], True, POLICY)
    assert not refunds_shipping(["defective"], False, POLICY)
    assert not refunds_shipping(["changed my mind"], True, POLICY)
    assert not refunds_shipping(["defective", "too big"], True, POLICY)
    assert not refunds_shipping([], True, POLICY)
