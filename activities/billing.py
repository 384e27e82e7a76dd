"""What an order's invoice says: the goods billed, the shipping charge and the tax, drafted
from the read model (lines, customer, shipments) and the configured rules (`MoneyRules`).

Pure money rules live in `domain/` (tax, charges, invoicing, credit notes); this module only
gathers their inputs from the database.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.db.models import (
    Customer,
    OrderLineRecord,
    OrderRecord,
    Product,
    ShipmentRecord,
    Warehouse,
)
from activities.db.models import Invoice as InvoiceRecord
from domain.charges import (
    ChargesConfig,
    FlatPerZone,
    ShippingCharge,
    dearest_charge,
    shipping_charge,
)
from domain.invoicing import BillLine, BillTo, Invoice, draft_invoice
from domain.money import quantum
from domain.order import Order
from domain.statuses import PaymentTerms
from domain.tax import TaxRates

DATA = Path(__file__).parents[1] / "domain" / "data"
GOODS_OUT = ("SHIPPED", "DELIVERED")
BOOKED_RATE_RESERVE = Decimal("0.20")
"""Under the booked-rate rule the charge is unknown at authorisation: the estimate reserves
this share of the goods' net for it."""


@dataclass(frozen=True)
class MoneyRules:
    """The configured tax rates and charges (data files, see Settings)."""

    rates: TaxRates
    charges: ChargesConfig

    @classmethod
    def load(cls, tax_rates_file: Path | None, charges_file: Path | None) -> "MoneyRules":
        rates = (tax_rates_file or DATA / "tax_rates.json").read_text()
        charges = (charges_file or DATA / "charges.json").read_text()
        return cls(
            rates=TaxRates.model_validate_json(rates),
            charges=ChargesConfig.model_validate_json(charges),
        )


def bill_to(session: Session, order: OrderRecord) -> BillTo:
    """Who is billed and where the goods go (the destination decides the tax)."""
    ship_to = order.order.get("ship_to") or {}
    return _bill_to(
        session,
        order.customer_id,
        str(ship_to.get("country", "")),
        str(ship_to.get("postal_code", "")),
    )


def _bill_to(session: Session, customer_id: str, country: str, postal_code: str) -> BillTo:
    customer = session.get(Customer, customer_id)
    return BillTo(
        customer_id=customer_id,
        name=customer.name if customer else "",
        country=country,
        postal_code=postal_code,
        vat_id=customer.vat_id if customer else None,
        payment_terms=PaymentTerms(customer.payment_terms if customer else "prepaid"),
    )


def goods(session: Session, order_id: str, units: Mapping[str, int]) -> list[BillLine]:
    """The goods billed: `units` per SKU at the order's prices, with each product's tax class."""
    lines = session.scalars(
        select(OrderLineRecord).where(OrderLineRecord.order_id == order_id).order_by("sku")
    ).all()
    products = {
        p.sku: p
        for p in session.scalars(select(Product).where(Product.sku.in_([x.sku for x in lines])))
    }
    billed = []
    for line in lines:
        quantity = units.get(line.sku, 0)
        if quantity <= 0:
            continue
        product = products.get(line.sku)
        billed.append(
            BillLine(
                sku=line.sku,
                quantity=quantity,
                unit_net=line.unit_price,
                tax_class=product.tax_class if product else None,
                description=product.name if product else line.sku,
            )
        )
    return billed


def shipping(
    session: Session,
    rules: MoneyRules,
    order: OrderRecord,
    goods_net: Decimal,
    to: BillTo,
    *,
    capture_no: int = 1,
    parcels_billed: Sequence[str] | None = None,
) -> ShippingCharge | None:
    """The charge for the parcels that left (None: no rule for the order's currency, or a
    later capture under the flat rule, which charges once per order, on the first invoice).

    `parcels_billed`: the shipments this capture bills (None: every parcel that left); free
    shipping is decided on the order's goods as ordered (`orders.total`), as the customer
    saw it at checkout, whichever wave an invoice bills.
    """
    policy = rules.charges.shipping.get(order.currency)
    if policy is None:
        return None
    if capture_no > 1 and isinstance(policy.rule, FlatPerZone):
        return None
    query = select(ShipmentRecord).where(
        ShipmentRecord.order_id == order.order_id, ShipmentRecord.state.in_(GOODS_OUT)
    )
    if parcels_billed is not None:
        query = query.where(ShipmentRecord.shipment_id.in_(list(parcels_billed)))
    parcels = session.scalars(query).all()
    countries = {w.code: w.country for w in session.scalars(select(Warehouse))}
    origins = [countries.get(p.warehouse, to.country) for p in parcels] or [to.country]
    booked = [p.cost for p in parcels if p.cost is not None]
    if not isinstance(policy.rule, FlatPerZone) and not booked:
        booked = [Decimal(0)]
    ordered = max(goods_net, order.total or Decimal(0))
    return shipping_charge(policy, order.currency, ordered, to.country, origins, booked)


def draft(
    session: Session,
    rules: MoneyRules,
    order_id: str,
    units: Mapping[str, int],
    on: date,
    *,
    capture_no: int = 1,
    parcels_billed: Sequence[str] | None = None,
) -> Invoice:
    """The invoice of `units` delivered (by `parcels_billed`), unnumbered (numbered when it
    is issued); capture `capture_no` of the order.

    Raises:
        ValueError: nothing to bill; domain.tax.NoTaxRate: no rate for the destination.
    """
    order = session.get(OrderRecord, order_id)
    if order is None:
        raise ValueError(f"order {order_id} is not in the read model")
    to = bill_to(session, order)
    lines = goods(session, order_id, units)
    net = sum((line.unit_net * line.quantity for line in lines), Decimal(0))
    charge = shipping(
        session, rules, order, net, to, capture_no=capture_no, parcels_billed=parcels_billed
    )
    earlier = [  # the order's invoices before this one: its tax per rate is cumulative
        entry
        for row in session.scalars(
            select(InvoiceRecord.document).where(
                InvoiceRecord.order_id == order_id, InvoiceRecord.capture_no < capture_no
            )
        )
        if row
        for entry in Invoice.model_validate(row).breakdown
    ]
    return draft_invoice(
        order_id, order.currency, lines, charge, to, rules.rates, on, earlier=earlier
    )


def estimate(session: Session, rules: MoneyRules, order: Order, on: date) -> Decimal:
    """What the order may cost before anything ships: every line, the dearest shipping the
    rule can charge (or the booked-rate reserve) taxed at the goods' highest rate, and the
    tax: the captures, however many waves, never add up to more.

    Raises:
        domain.tax.NoTaxRate: no rate for the destination or a product's tax class.
    """
    to = _bill_to(session, order.customer_id, order.ship_to.country, order.ship_to.postal_code)
    classes: dict[str, str | None] = {
        sku: tax_class
        for sku, tax_class in session.execute(
            select(Product.sku, Product.tax_class).where(
                Product.sku.in_([line.sku for line in order.lines])
            )
        )
    }
    lines = [
        BillLine(
            sku=line.sku,
            quantity=line.quantity,
            unit_net=line.unit_price,
            tax_class=classes.get(line.sku),
        )
        for line in order.lines
    ]
    policy = rules.charges.shipping.get(order.currency)
    charge = (
        None
        if policy is None
        else dearest_charge(policy, order.currency, order.total, BOOKED_RATE_RESERVE)
    )
    invoice = draft_invoice(
        order.order_id,
        order.currency,
        lines,
        charge,
        to,
        rules.rates,
        on,
        shipping_at_highest_rate=True,
    )
    # Waves split the shipping over the rates of the goods they bill, and each rate's tax is
    # rounded once over the order's invoices (cumulative): a cent per further rate bounds the
    # roundings the estimate's own split did not make.
    rates_more = max(len(invoice.breakdown) - 1, 0)
    return invoice.totals.gross + Decimal(rates_more) * quantum(order.currency)
