"""SQLAlchemy 2 typed models: catalog, stock, the orders read model and the audit trail."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Money = Numeric(14, 2)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(at: datetime) -> datetime:
    """A stored time with its zone: SQLite gives back naive datetimes (they are UTC)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def utc_day(at: datetime) -> date:
    """The UTC day of a stored time (PostgreSQL gives it back in the session's zone)."""
    return aware(at).astimezone(UTC).date()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Product(Base):
    """A catalog entry: what may be ordered, its list price and its line limit."""

    __tablename__ = "products"
    sku: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    list_price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    max_per_order: Mapped[int] = mapped_column(Integer, default=1000)
    active: Mapped[bool] = mapped_column(default=True)
    tax_class: Mapped[str] = mapped_column(
        String(16), default="standard", server_default="standard"
    )


class Customer(Base):
    """An account: its terms, its default fulfilment policy and its priority for scarce stock."""

    __tablename__ = "customers"
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    payment_terms: Mapped[str] = mapped_column(String(16))
    credit_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    fulfilment_policy: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[bool] = mapped_column(default=False)
    email: Mapped[str | None] = mapped_column(String(254))  # where the customer is told
    vat_id: Mapped[str | None] = mapped_column(String(20))  # EU B2B: reverse charge if valid


class Warehouse(Base):
    """A fulfilment location: where it is and how many orders it can ship a day."""

    __tablename__ = "warehouses"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float]
    longitude: Mapped[float]
    daily_capacity: Mapped[int] = mapped_column(Integer)


class WarehouseLoad(Base):
    """How many orders a warehouse serves on a day (UTC): those holding stock there, or
    having shipped it, from a reservation made that day. Kept by `activities.inventory` with
    the holds themselves, so a reservation reads its warehouses' load today in one row each
    instead of counting the day's reservations (README, "Speed")."""

    __tablename__ = "warehouse_loads"
    __table_args__ = (CheckConstraint("orders >= 0", name="orders_not_negative"),)
    warehouse: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)


class Stock(Base):
    """Units of one SKU at one warehouse. The database refuses any row that would oversell."""

    __tablename__ = "stock"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("safety_stock >= 0", name="safety_not_negative"),
        CheckConstraint("on_hand - reserved - safety_stock >= 0", name="never_oversold"),
    )
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    warehouse: Mapped[str] = mapped_column(ForeignKey("warehouses.code"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)


class StockReservation(Base):
    """A hard hold; its key makes a retried reservation a no-op."""

    __tablename__ = "stock_reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="positive_quantity"),
        # A warehouse's load today (orders it holds stock for, activities.inventory._candidates)
        # is read by every reservation: a range of today's rows, never the whole table.
        Index("ix_stock_reservations_day", "created_at", "state", "warehouse", "order_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    sku: Mapped[str] = mapped_column(String(40))
    warehouse: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="HELD")  # HELD, RELEASED, SHIPPED
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrderRecord(Base):
    """The queryable read model of one order; the workflow stays the source of truth."""

    __tablename__ = "orders"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Money)  # the goods, net
    # goods, dearest shipping and tax, as validated: what the order may cost the customer
    gross_estimate: Mapped[Decimal | None] = mapped_column(Money)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    promised_date: Mapped[date | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    order: Mapped[dict[str, Any]]
    routing: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrderLineRecord(Base):
    """One line of an order as placed."""

    __tablename__ = "order_lines"
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(40), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)


class OrderEvent(Base):
    """The audit trail: who/what/when/why. (order_id, step) is the idempotency key of a step."""

    __tablename__ = "order_events"
    __table_args__ = (UniqueConstraint("order_id", "step", name="one_event_per_step"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShipmentRecord(Base):
    """One parcel: from one warehouse, with one label."""

    __tablename__ = "shipments"
    shipment_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    warehouse: Mapped[str] = mapped_column(String(8))
    # BOOKING (intent written, label being bought), BOOKED, SHIPPED, DELIVERED, LOST, VOIDED,
    # SHIPPED_AFTER_CANCEL (left although its order was stopped: an exception for a person)
    state: Mapped[str] = mapped_column(String(24))
    carrier: Mapped[str | None] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(32))
    tracking_number: Mapped[str | None] = mapped_column(String(40))
    label_id: Mapped[str | None] = mapped_column(String(64))
    cost: Mapped[Decimal | None] = mapped_column(Money)
    detail: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CarrierLabel(Base):
    """The simulated carriers' own memory of labels (stands in for the carrier's system)."""

    __tablename__ = "carrier_labels"
    label_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    carrier: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(32))
    tracking_number: Mapped[str] = mapped_column(String(40))
    price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    voided: Mapped[bool] = mapped_column(default=False)


class Payment(Base):
    """Money movements of an order; amounts in minor units so the ledger sums exactly."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount_minor >= 0", name="amount_not_negative"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # AUTHORIZE, VOID, CAPTURE, REFUND
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """AUTHORIZE: until when the gateway honours the authorisation (None: no limit known)."""


class Invoice(Base):
    """The bill issued at a capture; Net-30 customers pay it later.

    An order has one invoice per capture: one per wave of parcels delivered (`capture_no`
    1, 2, ...); orders captured before capture per wave have exactly one.
    """

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("order_id", "capture_no", name="uq_invoices_order_capture"),)
    invoice_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    capture_no: Mapped[int] = mapped_column(default=1, server_default="1")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    terms: Mapped[str] = mapped_column(String(16))
    due_date: Mapped[date]
    paid: Mapped[bool] = mapped_column(default=False)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The bill as finance reads it (invoices issued before migration 0007 have none of these):
    net: Mapped[Decimal | None] = mapped_column(Money)
    tax: Mapped[Decimal | None] = mapped_column(Money)
    shipping: Mapped[Decimal | None] = mapped_column(Money)  # net shipping charge
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # domain.invoicing.Invoice


Index("ix_orders_dup", OrderRecord.customer_id, OrderRecord.fingerprint)


class StockReceipt(Base):
    """Goods received into a warehouse; the receipt id makes a repeated receipt a no-op."""

    __tablename__ = "stock_receipts"
    __table_args__ = (CheckConstraint("quantity > 0", name="receipt_positive"),)
    receipt_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    sku: Mapped[str] = mapped_column(String(40))
    warehouse: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Approver(Base):
    """Someone who may release holds; `tier` is manager, director, finance or review."""

    __tablename__ = "approvers"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)


class PriceBookEntry(Base):
    """A negotiated price: what this customer pays for this SKU."""

    __tablename__ = "price_book"
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    unit_price: Mapped[Decimal] = mapped_column(Money)


class Notification(Base):
    """A message to a person or team (escalations, breaches); adapters deliver it later."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    recipient: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApproverAccount(Base):
    """How an approver is reached and signs in to the inbox (one row per person).

    The sign-in token is stored as its SHA-256 only; `orderflow inbox-token` issues a new one.
    """

    __tablename__ = "approver_accounts"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    token_issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsedLink(Base):
    """An e-mailed approve/reject link that was acted on: a link works once."""

    __tablename__ = "used_links"
    link_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxEmail(Base):
    """One e-mail to one address, written with its notification, sent once (`sent_at`)."""

    __tablename__ = "outbox_emails"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(240), unique=True)
    notification_key: Mapped[str] = mapped_column(String(160), index=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refused: Mapped[str | None] = mapped_column(Text)  # the SMTP server's 5xx answer


class OrderBalance(Base):
    """Money per order in minor units; the CHECK makes a refund above the capture impossible."""

    __tablename__ = "order_balances"
    __table_args__ = (
        CheckConstraint("captured_minor >= 0", name="captured_not_negative"),
        CheckConstraint("refunded_minor >= 0", name="refunded_not_negative"),
        CheckConstraint("refunded_minor <= captured_minor", name="refunds_within_capture"),
    )
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class ReturnAuthorization(Base):
    """An RMA: what the customer sends back, its label, and where it stands."""

    __tablename__ = "return_authorizations"
    rma_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))  # OPEN, RECEIVED, INSPECTED, REFUNDED
    reason: Mapped[str] = mapped_column(Text)
    carrier: Mapped[str | None] = mapped_column(String(16))
    tracking_number: Mapped[str | None] = mapped_column(String(40))
    label_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReturnLine(Base):
    """Units of one SKU on an RMA and, after inspection, what happened to each of them."""

    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="return_positive"),
        CheckConstraint("restocked + refurbished + disposed <= quantity", name="dispositions_fit"),
    )
    rma_id: Mapped[str] = mapped_column(
        ForeignKey("return_authorizations.rma_id"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(String(40), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    restocked: Mapped[int] = mapped_column(Integer, default=0)
    refurbished: Mapped[int] = mapped_column(Integer, default=0)
    disposed: Mapped[int] = mapped_column(Integer, default=0)


class Refund(Base):
    """Money given back; one row per idempotency key, bounded by `order_balances`."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="refund_positive"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("order_balances.order_id"), index=True)
    rma_id: Mapped[str | None] = mapped_column(String(80))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the credit, priced


class CreditNote(Base):
    """A refund on account terms (Net-30): the invoice is credited, no money is paid out."""

    __tablename__ = "credit_notes"
    __table_args__ = (CheckConstraint("amount > 0", name="credit_note_positive"),)
    credit_note_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id"), unique=True)
    invoice_no: Mapped[str] = mapped_column(ForeignKey("invoices.invoice_no"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    net: Mapped[Decimal | None] = mapped_column(Money)
    tax: Mapped[Decimal | None] = mapped_column(Money)
    restocking_fee: Mapped[Decimal | None] = mapped_column(Money)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # domain.credit_notes.CreditNote


class ChannelReference(Base):
    """A channel's reference for one order (its own order id, or a client's Idempotency-Key):
    the same reference always answers with the same order, never a second one."""

    __tablename__ = "channel_references"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # external_id | idempotency_key
    reference: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # the request's content, for replays
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """A key a channel's sender authenticates with; stored as its SHA-256 only."""

    __tablename__ = "api_keys"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), index=True)
    label: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ErpPosting(Base):
    """A document for the ERP (invoice, credit note, refund, cancellation): the outbox.

    Written in the same transaction as the document; delivered by the ERP dispatcher in
    `seq` order per order, under `idempotency_key`, which the ERP deduplicates on.
    """

    __tablename__ = "erp_postings"
    __table_args__ = (
        UniqueConstraint("order_id", "seq", name="one_posting_per_seq"),
        CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="posting_state"),
        Index("ix_erp_postings_due", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(240), unique=True)
    order_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # invoice, credit_note, refund, cancellation
    document: Mapped[str] = mapped_column(String(80))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    erp_reference: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentNumber(Base):
    """The last number issued per series and year: invoices and credit notes are numbered
    without gaps (the row is locked while a number is taken, in the document's transaction)."""

    __tablename__ = "document_numbers"
    series: Mapped[str] = mapped_column(String(8), primary_key=True)  # INV, CN
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
