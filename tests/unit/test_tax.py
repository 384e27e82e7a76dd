"""Tests for VAT ids and tax treatments: EU consumers, reverse charge, domestic B2B, exports."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.tax import NoTaxRate, TaxCategory, TaxRates, TaxScheme, treatment_for
from domain.vat_ids import is_valid_vat_id, normalise_vat_id, vat_id_country

RATES = TaxRates.model_validate_json(
    (Path(__file__).parents[2] / "domain/data/tax_rates.json").read_text()
)
FR_VAT_ID = "FR40303265045"


@pytest.mark.parametrize(
    ("vat_id", "country"),
    [
        ("ATU12345678", "AT"),
        ("BE0123456789", "BE"),
        ("DE123456789", "DE"),
        ("EL123456789", "GR"),
        ("ESX1234567T", "ES"),
        (FR_VAT_ID, "FR"),
        ("FRAB123456789", "FR"),
        ("IE6388047V", "IE"),
        ("IT12345678901", "IT"),
        ("NL123456789B01", "NL"),
        ("SE123456789001", "SE"),
        ("nl 1234.567-89 b01", "NL"),
    ],
)
def test_well_formed_vat_ids_name_their_member_state(vat_id: str, country: str) -> None:
    assert vat_id_country(vat_id) == country
    assert is_valid_vat_id(vat_id, country)


@pytest.mark.parametrize(
    "vat_id",
    [
        "DE12345678",  # one digit short
        "NL123456789",  # no B01
        "FRIO123456789",  # I and O are not used in the French key
        "FR123",
        "GB123456789",  # not an EU member state
        "GR123456789",  # Greece writes EL
        "",
        None,
    ],
)
def test_malformed_vat_ids_are_not_valid(vat_id: str | None) -> None:
    assert vat_id_country(vat_id) is None
    assert not is_valid_vat_id(vat_id)


def test_a_vat_id_of_another_country_is_not_valid_for_this_one() -> None:
    assert not is_valid_vat_id(FR_VAT_ID, "DE")
    assert normalise_vat_id(" fr-40 303.265.045 ") == FR_VAT_ID


def test_a_german_consumer_pays_german_vat() -> None:
    standard = treatment_for(RATES, "standard", "DE")
    assert (standard.scheme, standard.category, standard.rate) == (
        TaxScheme.VAT,
        TaxCategory.STANDARD,
        Decimal(19),
    )
    assert standard.jurisdiction == "DE" and standard.note is None
    assert treatment_for(RATES, "reduced", "DE").rate == Decimal(7)
    assert treatment_for(RATES, None, "FR").rate == Decimal(20)  # the default class


def test_a_french_business_with_a_valid_vat_id_is_reverse_charged() -> None:
    treatment = treatment_for(RATES, "standard", "FR", "75001", FR_VAT_ID)
    assert (treatment.category, treatment.rate) == (TaxCategory.INTRA_EU_SUPPLY, Decimal(0))
    assert treatment.note is not None
    assert "Art. 138 Directive 2006/112/EC" in treatment.note
    assert "VAT to be accounted for by the recipient" in treatment.note


def test_the_reverse_charge_category_can_be_ae_with_its_article() -> None:
    rates = RATES.model_copy(update={"intra_eu_b2b_category": TaxCategory.REVERSE_CHARGE})
    treatment = treatment_for(rates, "standard", "FR", vat_id=FR_VAT_ID)
    assert (treatment.category, treatment.rate) == (TaxCategory.REVERSE_CHARGE, Decimal(0))
    assert treatment.note == (
        "Reverse charge: VAT to be accounted for by the recipient, Art. 196 Directive 2006/112/EC"
    )


@pytest.mark.parametrize(
    ("country", "vat_id", "rate"),
    [
        ("FR", "FR123", Decimal(20)),  # malformed: charged
        ("FR", "DE123456789", Decimal(20)),  # another country's id: charged, conservatively
        ("NL", "NL123456789B01", Decimal(21)),  # domestic business: charged
        ("NL", FR_VAT_ID, Decimal(21)),  # the goods stay in the seller's country
    ],
)
def test_businesses_without_a_matching_foreign_vat_id_are_charged(
    country: str, vat_id: str, rate: Decimal
) -> None:
    treatment = treatment_for(RATES, "standard", country, vat_id=vat_id)
    assert (treatment.category, treatment.rate) == (TaxCategory.STANDARD, rate)


def test_a_us_order_pays_no_vat_but_the_states_sales_tax() -> None:
    nj = treatment_for(RATES, "standard", "US", "07030")
    assert (nj.scheme, nj.category, nj.rate, nj.jurisdiction) == (
        TaxScheme.SALES_TAX,
        TaxCategory.STANDARD,
        Decimal("6.625"),
        "US-NJ",
    )
    assert nj.note is not None and "Art. 146" in nj.note
    assert treatment_for(RATES, "standard", "US", "88510").jurisdiction == "US-TX"  # El Paso


def test_a_state_without_a_rate_is_a_plain_export() -> None:
    montana = treatment_for(RATES, "standard", "US", "59801")
    assert (montana.scheme, montana.category, montana.rate) == (
        TaxScheme.VAT,
        TaxCategory.EXPORT,
        Decimal(0),
    )
    swiss = treatment_for(RATES, "standard", "CH", "8001", vat_id="CHE123456789")
    assert (swiss.category, swiss.rate) == (TaxCategory.EXPORT, Decimal(0))


def test_californian_delivery_charges_are_not_taxed() -> None:
    assert treatment_for(RATES, "standard", "US", "94105").rate == Decimal("7.25")
    shipping = treatment_for(RATES, "standard", "US", "94105", shipping=True)
    assert (shipping.category, shipping.rate) == (TaxCategory.EXEMPT, Decimal(0))
    assert treatment_for(RATES, "standard", "US", "07030", shipping=True).rate == Decimal("6.625")


def test_a_missing_rate_is_an_error_not_zero() -> None:
    with pytest.raises(NoTaxRate, match="'reduced' in DK"):
        treatment_for(RATES, "reduced", "DK")
    without_hungary = RATES.model_copy(
        update={"vat": {k: v for k, v in RATES.vat.items() if k != "HU"}}
    )
    with pytest.raises(NoTaxRate, match="HU"):
        treatment_for(without_hungary, "standard", "HU")


def test_the_rates_table_refuses_non_eu_vat_and_a_non_eu_seller() -> None:
    with pytest.raises(ValidationError, match="not an EU member state"):
        TaxRates(seller_country="GB", vat={"GB": {"standard": Decimal(20)}})
    with pytest.raises(ValidationError, match="not an EU member state"):
        TaxRates(seller_country="NL", vat={"NL": {"standard": Decimal(21)}, "US": {}})
    with pytest.raises(ValidationError, match="not a %"):
        TaxRates(seller_country="NL", vat={"NL": {"standard": Decimal(121)}})
