"""Contracts for goods received into a warehouse and the backorders they serve."""

from pydantic import BaseModel, Field


class StockReceipt(BaseModel):
    """Goods in: `receipt_id` makes a repeated receipt a no-op."""

    receipt_id: str = Field(min_length=1, max_length=80)
    sku: str = Field(min_length=1, max_length=40)
    warehouse: str = Field(min_length=1, max_length=8)
    quantity: int = Field(gt=0, le=1_000_000)


class ReceiptOutcome(BaseModel):
    """What a receipt did: whether it was new, and which backorders it was offered to."""

    receipt: StockReceipt
    booked: bool
    offered: list[str] = Field(default_factory=list, description="order ids, in priority order")
    now_reserved: list[str] = Field(default_factory=list)


class StockOffer(BaseModel):
    """Goods-in offering a receipt's stock to one backordered order."""

    order_id: str
    receipt_id: str
