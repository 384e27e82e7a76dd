"""Master data: load a catalog (warehouses, products, stock, customers) idempotently."""

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from activities.db.models import Approver, Customer, PriceBookEntry, Product, Stock, Warehouse


def load_catalog(engine: Engine, data: dict[str, Any]) -> dict[str, int]:
    """Upsert master data; stock rows are created once (a re-seed never resets live stock)."""
    counts = {
        "warehouses": 0,
        "products": 0,
        "stock": 0,
        "customers": 0,
        "approvers": 0,
        "price_book": 0,
    }
    with Session(engine) as session, session.begin():
        for row in data.get("warehouses", []):
            session.merge(Warehouse(**row))
            counts["warehouses"] += 1
        for row in data.get("products", []):
            session.merge(Product(**{**row, "list_price": Decimal(row["list_price"])}))
            counts["products"] += 1
        for row in data.get("customers", []):
            session.merge(Customer(**{**row, "credit_limit": Decimal(row["credit_limit"])}))
            counts["customers"] += 1
        for row in data.get("approvers", []):
            session.merge(Approver(**{"active": True, **row}))
            counts["approvers"] += 1
        session.flush()
        for row in data.get("price_book", []):
            session.merge(PriceBookEntry(**{**row, "unit_price": Decimal(row["unit_price"])}))
            counts["price_book"] += 1
        for row in data.get("stock", []):
            if session.get(Stock, (row["sku"], row["warehouse"])) is None:
                session.add(Stock(reserved=0, **{"safety_stock": 0, **row}))
                counts["stock"] += 1
    return counts
