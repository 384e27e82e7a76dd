"""Each demo run starts as the first did, however many ran before it in the same home.

A re-seed never resets live stock (`activities.catalog`), and a demo run leaves orders holding
stock (waiting for shipment, come in by the channels) and ships others: after a few runs in
one home a product with little stock (the monitors) had none left, and the next run's orders
waited on backorder until the demo gave up. So before placing its orders the demo books a
goods receipt, as `orderflow restock` does (through the StockReceiptWorkflow, which serves
backorders first), for every stock row of the catalog with fewer units free of holds than
the catalog puts there.

Those orders also add up on their Net-30 customers' accounts (open orders and unpaid
invoices: the credit check's exposure; nothing in orderflow marks an invoice paid), so a
later run's order for such a customer is held for credit. An order the demo means to go
through has that CREDIT hold released by the demo's credit controller, with a note saying
why, in the run's output.
"""

import json
from pathlib import Path
from typing import Any

from domain.holds import ApprovalDecision, HoldType
from domain.state import OrderState
from starter import orders
from starter.inventory import restock, stock_levels
from starter.render import console
from workers.settings import Settings

CATALOG = Path(__file__).parent / "catalog.json"


async def received_again(settings: Settings, client: Any) -> list[str]:
    """Receive what earlier runs took of the catalog's stock; one line per receipt."""
    live = {(row["sku"], row["warehouse"]): row for row in stock_levels(settings, None)}
    received: list[str] = []
    for row in json.loads(CATALOG.read_text())["stock"]:
        now = live.get((row["sku"], row["warehouse"]))
        short = row["on_hand"] - (now["on_hand"] - now["reserved"]) if now else 0
        if short > 0:
            await restock(client, settings, row["sku"], row["warehouse"], short)
            received.append(f"{row['sku']} x{short} at {row['warehouse']}")
    return received


CREDIT_CONTROLLER = "fiona.finance"


async def release_credit_taken_by_earlier_runs(client: Any, held: OrderState) -> None:
    """Release the CREDIT hold of an order the demo means to go through (earlier runs' open
    orders and invoices took its customer's credit); any other hold stays for a person."""
    if not any(hold.type == HoldType.CREDIT and hold.is_open for hold in held.holds):
        return
    note = "demo: earlier demo runs in this home took the customer's credit"
    decision = ApprovalDecision(by=CREDIT_CONTROLLER, hold=HoldType.CREDIT, note=note)
    await orders.approve(client, held.order_id, decision)
    console.print(f"{held.order_id}: CREDIT hold released by {CREDIT_CONTROLLER} ({note})")
