"""KPIs from the read model after real orders: cycle time, on-time delivery, RMA-to-refund."""

from sqlalchemy import Engine
from temporalio.client import Client

from activities.reports import kpis
from domain.returns import Disposition, InspectionLine, InspectionRequest
from starter.returns import inspect_return
from tests.workflows.test_returns import received_return
from workers.settings import Settings


async def test_kpis_follow_completed_and_returned_orders(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku, rma_id = await received_return(client, worker, engine)
    await inspect_return(
        client,
        InspectionRequest(
            rma_id=rma_id,
            lines=[InspectionLine(sku=sku, quantity=1, disposition=Disposition.RESTOCK)],
        ),
    )

    numbers = kpis(engine)
    assert numbers["orders"] >= 1 and numbers["by_status"]["REFUNDED"] >= 1
    assert 0 <= numbers["cycle_time_hours_median"] < 1  # seconds in a test, not hours
    assert numbers["on_time_delivery_pct"] == 100.0  # delivered the day it was placed
    assert numbers["rma_to_refund_hours_median"] is not None
    assert numbers["targets"]["on_time_delivery_pct"] == 96.0
