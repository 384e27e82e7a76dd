"""VAT and sales tax: the rate, category and invoice wording of each line, from a rates table.

The rules, for a seller established in one EU member state (`TaxRates.seller_country`) and
treating every supply as made from there (stock in other member states' warehouses and the
registrations it needs are out of scope):

- EU consumer (no valid VAT id): the destination country's VAT (the One-Stop-Shop rule for
  distance sales since 2021, assuming the seller is above the EUR 10,000 threshold).
- EU business in another member state (the destination), with a well-formed VAT id of that
  same member state: 0 %, the customer accounts for the VAT (category K, exempt
  intra-Community supply, Art. 138; `intra_eu_b2b_category` may be set to AE). The VAT id
  is checked for format only (`domain.vat_ids`), not in VIES. Conservative on purpose: a
  VAT id of another country than the destination is charged, since the seller owes the VAT
  when the exemption turns out wrong.
- Domestic business (destination = seller's country): charged like a consumer.
- Outside the EU: export, no VAT (category G, Art. 146). Where `sales_tax` has a table for
  the country (the US), its rate applies instead: the region is found by the longest matching
  postal-code prefix (ZIP prefixes for US states), else the table's `default_rate`. State
  base rates only, no county or city rates: a tax engine's job, not a table's.

Rates are percentages ("19" is 19 %).
"""

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.vat_ids import EU_MEMBER_STATES, vat_id_country


class TaxScheme(StrEnum):
    """Which tax a line carries."""

    VAT = "VAT"
    SALES_TAX = "SALES_TAX"


class TaxCategory(StrEnum):
    """UNCL 5305 duty/tax category codes, as EN 16931 e-invoices use them."""

    STANDARD = "S"
    ZERO = "Z"
    INTRA_EU_SUPPLY = "K"
    REVERSE_CHARGE = "AE"
    EXPORT = "G"
    EXEMPT = "E"


DEFAULT_NOTES: dict[TaxCategory, str] = {
    TaxCategory.INTRA_EU_SUPPLY: (
        "Exempt intra-Community supply of goods (Art. 138 Directive 2006/112/EC): "
        "reverse charge, VAT to be accounted for by the recipient"
    ),
    TaxCategory.REVERSE_CHARGE: (
        "Reverse charge: VAT to be accounted for by the recipient, Art. 196 Directive 2006/112/EC"
    ),
    TaxCategory.EXPORT: "Export outside the EU, exempt from VAT (Art. 146 Directive 2006/112/EC)",
    TaxCategory.ZERO: "Zero-rated supply",
    TaxCategory.EXEMPT: "Not subject to sales tax",
}


class NoTaxRate(ValueError):
    """The table has no rate for this destination and tax class: fix the data, do not guess."""


TaxKey = tuple[str, str, Decimal, str]
"""What a tax breakdown groups lines by: scheme, category, rate, jurisdiction."""


class TaxTreatment(BaseModel):
    """How one line is taxed: scheme, category, rate (percent), where, and the invoice note."""

    model_config = ConfigDict(frozen=True)

    scheme: TaxScheme
    category: TaxCategory
    rate: Decimal = Field(ge=0, le=100)
    jurisdiction: str = Field(description='"DE", or "US-NJ" for a sales-tax region')
    note: str | None = None

    @property
    def key(self) -> TaxKey:
        """What the tax breakdown groups by."""
        return (self.scheme.value, self.category.value, self.rate, self.jurisdiction)

    @property
    def label(self) -> str:
        """E.g. "VAT S 19 % DE"."""
        scheme = "VAT" if self.scheme is TaxScheme.VAT else "Sales tax"
        return f"{scheme} {self.category.value} {self.rate.normalize():f} % {self.jurisdiction}"


class SalesTaxRegion(BaseModel):
    """A state (or any region) that levies sales tax, found by postal-code prefixes."""

    code: str = Field(min_length=1, max_length=8, description='e.g. "NJ"')
    postal_prefixes: list[str] = Field(min_length=1)
    rate: Decimal = Field(ge=0, le=100)
    shipping_taxable: bool = True
    """Some states tax delivery charges with the goods, others not when stated separately."""


class SalesTaxTable(BaseModel):
    """Sales tax of one country, by region; `default_rate` where no region matches."""

    default_rate: Decimal = Field(default=Decimal(0), ge=0, le=100)
    regions: list[SalesTaxRegion] = Field(default_factory=list)

    def region_for(self, postal_code: str) -> SalesTaxRegion | None:
        """The region with the longest prefix of `postal_code`, or None."""
        postal = postal_code.strip().upper()
        best: tuple[int, SalesTaxRegion] | None = None
        for region in self.regions:
            for prefix in region.postal_prefixes:
                if postal.startswith(prefix.upper()) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), region)
        return best[1] if best else None


class TaxRates(BaseModel):
    """The rates table (loadable from JSON): VAT per country and class, sales tax by region."""

    seller_country: str = Field(pattern=r"^[A-Z]{2}$")
    seller_vat_id: str | None = None
    seller_name: str | None = Field(default=None, description="legal name on invoices")
    seller_address: list[str] = Field(default_factory=list, description="address lines")
    default_class: str = "standard"
    vat: dict[str, dict[str, Decimal]] = Field(description="EU country -> tax class -> rate %")
    sales_tax: dict[str, SalesTaxTable] = Field(default_factory=dict)
    intra_eu_b2b_category: TaxCategory = TaxCategory.INTRA_EU_SUPPLY
    notes: dict[TaxCategory, str] = Field(default_factory=lambda: dict(DEFAULT_NOTES))

    @model_validator(mode="after")
    def _consistent(self) -> "TaxRates":
        if self.seller_country not in EU_MEMBER_STATES:
            raise ValueError(f"seller country {self.seller_country} is not an EU member state")
        for country, classes in self.vat.items():
            if country not in EU_MEMBER_STATES:
                raise ValueError(f"VAT rates for {country}, which is not an EU member state")
            for tax_class, rate in classes.items():
                if not Decimal(0) <= rate <= Decimal(100):
                    raise ValueError(f"VAT rate {rate} of {country}/{tax_class} is not a %")
        if self.default_class not in self.vat.get(self.seller_country, {}):
            raise ValueError(f"no {self.default_class} rate for the seller's country")
        if self.intra_eu_b2b_category not in (
            TaxCategory.INTRA_EU_SUPPLY,
            TaxCategory.REVERSE_CHARGE,
        ):
            raise ValueError("intra_eu_b2b_category is K or AE")
        return self

    def note_for(self, category: TaxCategory) -> str | None:
        return self.notes.get(category, DEFAULT_NOTES.get(category))


def treatment_for(
    rates: TaxRates,
    tax_class: str | None,
    destination_country: str,
    postal_code: str = "",
    vat_id: str | None = None,
    *,
    shipping: bool = False,
) -> TaxTreatment:
    """How a line of `tax_class` (None: the default class) shipped there is taxed.

    Args:
        rates: The rates table.
        tax_class: The product's tax class, e.g. "standard", "reduced", "zero".
        destination_country: Where the goods go (ISO alpha-2).
        postal_code: The destination's postal code (finds the US state).
        vat_id: The customer's VAT id from its account, if any (format-checked here).
        shipping: The line is a delivery charge (some sales-tax regions do not tax it).

    Raises:
        NoTaxRate: an EU destination the table has no rate for (country or class).
    """
    tax_class = tax_class or rates.default_class
    destination = destination_country.strip().upper()
    if destination not in EU_MEMBER_STATES:
        return _export(rates, destination, postal_code, shipping)
    if vat_id_country(vat_id) == destination != rates.seller_country:
        category = rates.intra_eu_b2b_category
        return TaxTreatment(
            scheme=TaxScheme.VAT,
            category=category,
            rate=Decimal(0),
            jurisdiction=destination,
            note=rates.note_for(category),
        )
    rate = rates.vat.get(destination, {}).get(tax_class)
    if rate is None:
        raise NoTaxRate(f"no VAT rate for tax class {tax_class!r} in {destination}")
    category = TaxCategory.STANDARD if rate > 0 else TaxCategory.ZERO
    note = rates.note_for(category) if category is TaxCategory.ZERO else None
    return TaxTreatment(
        scheme=TaxScheme.VAT, category=category, rate=rate, jurisdiction=destination, note=note
    )


def _export(rates: TaxRates, country: str, postal_code: str, shipping: bool) -> TaxTreatment:
    export_note = rates.note_for(TaxCategory.EXPORT)
    table = rates.sales_tax.get(country)
    if table is not None:
        region = table.region_for(postal_code)
        rate = region.rate if region else table.default_rate
        where = f"{country}-{region.code}" if region else country
        if region is not None and shipping and not region.shipping_taxable:
            return TaxTreatment(
                scheme=TaxScheme.SALES_TAX,
                category=TaxCategory.EXEMPT,
                rate=Decimal(0),
                jurisdiction=where,
                note=f"{export_note}; delivery not subject to {where} sales tax",
            )
        if rate > 0:
            return TaxTreatment(
                scheme=TaxScheme.SALES_TAX,
                category=TaxCategory.STANDARD,
                rate=rate,
                jurisdiction=where,
                note=f"{export_note}; {where} sales tax",
            )
    return TaxTreatment(
        scheme=TaxScheme.VAT,
        category=TaxCategory.EXPORT,
        rate=Decimal(0),
        jurisdiction=country,
        note=export_note,
    )
