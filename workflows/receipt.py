"""StockReceiptWorkflow: goods in, then backorders served in priority order."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.backorders import BackorderActivities
    from activities.inventory import InventoryActivities
    from domain.statuses import OrderStatus
    from domain.stock import ReceiptOutcome, StockOffer, StockReceipt
    from workflows import versions
    from workflows.steps import run_step


def receipt_workflow_id(receipt_id: str) -> str:
    """One workflow per receipt: receiving the same delivery twice is refused by Temporal."""
    return f"receipt-{receipt_id}"


@workflow.defn
class StockReceiptWorkflow:
    """Book the goods (once), then offer them to backordered orders, best customer first."""

    @workflow.run
    async def run(self, receipt: StockReceipt) -> ReceiptOutcome:
        versions.decide_at_start()
        booked: bool = await run_step(
            InventoryActivities.receive_stock,
            receipt,
            summary=f"receive {receipt.quantity} x {receipt.sku} at {receipt.warehouse}",
        )
        outcome = ReceiptOutcome(receipt=receipt, booked=booked)
        waiting: list[str] = await run_step(
            InventoryActivities.backordered_orders,
            receipt.sku,
            summary=f"backorders waiting for {receipt.sku}",
        )
        for order_id in waiting:
            status: str = await run_step(
                BackorderActivities.offer_stock,
                StockOffer(order_id=order_id, receipt_id=receipt.receipt_id),
                summary=f"offer stock to {order_id}",
                timeout=timedelta(minutes=2),
                heartbeat=timedelta(seconds=10),
            )
            outcome.offered.append(order_id)
            if status != OrderStatus.BACKORDERED.value:
                outcome.now_reserved.append(order_id)
        return outcome
