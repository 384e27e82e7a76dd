"""Every message to a running order is safe: one test per hole found by review (issue 9).

Races are made deterministic: a worker started after the messages were sent (they then
arrive in one workflow task), or an activity held until the test says go. Each test ends
with `orderflow check` over its own orders.
"""

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowUpdateFailedError

from domain.commands import CancelRequest, OrderEdit, ShipmentNotice
from domain.holds import ApprovalDecision, RejectionDecision
from domain.order import Order
from domain.returns import Rma
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.inventory import restock
from starter.orders import UserError
from tests.factories import make_order, new_sku, payments_of, stock_of, until
from tests.gates import GoAhead, assert_invariants, held_activity
from workers.settings import Settings
from workers.worker import build_worker
from workflows import search


def handle_of(client: Client, order_id: str):  # type: ignore[no-untyped-def]
    return client.get_workflow_handle(search.workflow_id(order_id), result_type=OrderState)


async def accepted(call: "asyncio.Task[str]") -> str | None:
    """The Update's answer, or None when it was refused."""
    try:
        return await call
    except WorkflowUpdateFailedError:
        return None


async def booked(client: Client, settings: Settings, order: Order):  # type: ignore[no-untyped-def]
    """Placed, its stock held and its label booked: AWAITING_SHIPMENT; the order's handle."""
    await orders.place(client, settings, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    return handle_of(client, order.order_id)


async def delivered(client: Client, settings: Settings, order: Order):  # type: ignore[no-untyped-def]
    """Placed, shipped and delivered by signals without payload (the only parcel): COMPLETED."""
    handle = await booked(client, settings, order)
    await handle.signal("ship")
    await handle.signal("deliver")
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    return handle


# --- 1. edits after approval ---------------------------------------------------------------


async def test_an_approval_and_a_big_edit_together_never_bypass_the_gate(
    client: Client, settings: Settings, engine: Engine
) -> None:
    """Review approval and an edit to 110 units arrive in one workflow task: whichever is
    taken first, the money authorised and the stock held are those of the approved order."""
    sku = new_sku(engine, {"AMS": 200}, price="49.90")
    order = make_order({sku: 1}, price="49.90", manual_review=True)
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    handle = handle_of(client, order.order_id)
    await handle.signal("approve_signal", ApprovalDecision(by="rob.review"))
    edit = asyncio.create_task(handle.execute_update("edit", OrderEdit(lines={sku: 110})))
    async with build_worker(client, settings, engine):
        if await accepted(edit):  # taken first: the order is assessed again, AMOUNT held
            state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL)
            assert [h.type.value for h in state.holds if h.is_open] == ["AMOUNT"]
            assert state.payment is None and stock_of(engine, sku) == {"AMS": (200, 0)}
            await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
        state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        units = state.lines[0]["quantity"]
        assert state.payment is not None and state.payment.amount == state.total
        assert state.total == Decimal("49.90") * units
        assert stock_of(engine, sku) == {"AMS": (200, units)}
        await assert_invariants(client, settings, engine)


async def test_an_edit_while_held_is_assessed_again_and_keeps_only_unchanged_releases(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 200}, price="49.90")
    order = make_order({sku: 110}, price="49.90", manual_review=True)  # 5,489.00
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    answer = await orders.approve(client, order.order_id, ApprovalDecision(by="rob.review"))
    assert answer == "released MANUAL_REVIEW; still on hold: AMOUNT"
    await orders.edit(client, order.order_id, OrderEdit(lines={sku: 120}))  # 5,988.00
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    assert state.total == Decimal("5988.00")
    assert {h.type.value: h.is_open for h in state.holds} == {
        "AMOUNT": True,  # a new amount: approved again
        "MANUAL_REVIEW": False,  # the same review hold: its release stands
    }
    assert stock_of(engine, sku) == {"AMS": (200, 0)} and state.payment is None
    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.payment is not None and state.payment.amount == Decimal("5988.00")
    assert stock_of(engine, sku) == {"AMS": (200, 120)}
    await assert_invariants(client, worker, engine)


async def test_edits_are_refused_from_the_moment_the_last_hold_is_released(
    client: Client, settings: Settings, engine: Engine
) -> None:
    """An edit that lands while payment is authorised or stock held is refused, not lost."""
    sku = new_sku(engine, {"AMS": 600}, price="999.90")
    order = make_order({sku: 5}, price="999.90")  # 4,999.50: just under the manager's line
    gate = GoAhead()
    held = held_activity(client, settings, engine, "authorize_payment", gate)
    async with build_worker(client, settings, engine, overrides=[held]):
        await orders.place(client, settings, order)
        await gate.reached()  # validated, no hold: the order is being authorised
        with pytest.raises(UserError, match="edits are possible until the order is approved"):
            await orders.edit(client, order.order_id, OrderEdit(lines={sku: 520}))
        gate.go()
        state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        with pytest.raises(UserError, match="edits are possible until the order is approved"):
            await orders.edit(client, order.order_id, OrderEdit(lines={sku: 505}))
        assert [line["quantity"] for line in state.lines] == [5]
        assert stock_of(engine, sku) == {"AMS": (600, 5)}
        assert state.payment is not None and state.payment.amount == Decimal("4999.50")
        await assert_invariants(client, settings, engine)


async def test_an_edit_after_an_approval_was_answered_is_refused(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 200}, price="49.90")
    order = make_order({sku: 1}, price="49.90", manual_review=True)
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    await orders.approve(client, order.order_id, ApprovalDecision(by="rob.review"))
    with pytest.raises(UserError, match="edits are possible until the order is approved"):
        await orders.edit(client, order.order_id, OrderEdit(lines={sku: 110}))
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.total == Decimal("49.90") and stock_of(engine, sku) == {"AMS": (200, 1)}
    await assert_invariants(client, worker, engine)


# --- 5. accepted decisions are never lost ---------------------------------------------------


async def test_a_rejection_and_an_edit_together_never_lose_the_accepted_one(
    client: Client, settings: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00")  # AMOUNT hold for a manager
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    handle = handle_of(client, order.order_id)
    edit = asyncio.create_task(handle.execute_update("edit", OrderEdit(lines={sku: 7})))
    reject = asyncio.create_task(
        handle.execute_update("reject", RejectionDecision(by="mia.manager", reason="no"))
    )
    async with build_worker(client, settings, engine):
        edited, rejected = await accepted(edit), await accepted(reject)
        assert (edited is None) != (rejected is None), "exactly one of them is taken"
        if rejected:
            final = await asyncio.wait_for(handle.result(), 30)
            assert final.status == OrderStatus.REJECTED and "mia.manager" in (final.reason or "")
        else:
            state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL)
            assert state.lines[0]["quantity"] == 7
            await orders.reject(
                client, order.order_id, RejectionDecision(by="mia.manager", reason="no")
            )
            assert (await asyncio.wait_for(handle.result(), 30)).status == OrderStatus.REJECTED
        await assert_invariants(client, settings, engine)


# --- 2. shipped goods are billed when a later wave fails -----------------------------------


@pytest.mark.settings(booking_attempts=1, return_window="2s")  # snapshotted at validation
async def test_goods_shipped_before_a_later_wave_fails_are_billed(
    client: Client, settings: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 7})
    order = make_order({sku: 10})  # ship when available: 7 now, 3 later
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.notify_shipment(client, order.order_id, "ship", None, "wms")
        await orders.notify_shipment(client, order.order_id, "deliver", None, "carrier")
        await until(client, order.order_id, lambda s: s.status == OrderStatus.BACKORDERED)
    down = settings.model_copy(update={"carriers_down": "PARCELCO,SWIFTPOST,GLOBEX"})
    async with build_worker(client, down, engine):
        await restock(client, down, sku, "AMS", 3)
        final = await asyncio.wait_for(handle_of(client, order.order_id).result(), 60)
    assert final.status == OrderStatus.COMPLETED
    assert payments_of(engine, order.order_id)["CAPTURE"] == Decimal("70.00")
    assert stock_of(engine, sku) == {"AMS": (3, 0)}  # wave 2's hold released, not shipped
    assert any(e.what.startswith("the rest of the order was dropped") for e in final.events)
    assert final.capture is not None and final.capture.amount == Decimal("70.00")
    await assert_invariants(client, settings, engine)


# --- 3 and 10. cancel and ship notices ------------------------------------------------------


async def test_a_ship_notice_after_an_accepted_cancel_is_an_exception_not_a_release(
    client: Client, settings: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    gate = GoAhead()
    held = held_activity(client, settings, engine, "void_labels", gate)
    async with build_worker(client, settings, engine, overrides=[held]):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        assert "cancelling" in await orders.cancel(client, order.order_id, "changed mind", "cs")
        await gate.reached()  # the cancel is being carried out: labels are being voided
        await handle_of(client, order.order_id).signal("ship", ShipmentNotice(by="wms"))
        for _ in range(100):  # the notice is taken (a workflow task) while the void waits
            if (await orders.state_of(client, order.order_id)).shipments[0].shipped:
                break
            await asyncio.sleep(0.1)
        gate.go()
        final = await asyncio.wait_for(handle_of(client, order.order_id).result(), 30)
    assert final.status == OrderStatus.CANCELLED
    assert stock_of(engine, sku) == {"AMS": (3, 0)}  # the 2 units left: not back in stock
    assert any(e.what.startswith("exception:") for e in final.events)
    result = await assert_invariants(client, settings, engine)
    assert [e["rule"] for e in result["exceptions"]] == ["shipped-after-stop"]


async def test_a_ship_notice_and_a_cancel_together_have_one_outcome(
    client: Client, settings: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    handle = handle_of(client, order.order_id)
    await handle.signal("ship", ShipmentNotice(by="wms"))
    cancel = asyncio.create_task(
        handle.execute_update("cancel", CancelRequest(reason="too late?", by="cs"))
    )
    async with build_worker(client, settings, engine):
        cancelled = await accepted(cancel)
        if cancelled is None:  # the parcel left first: the order goes on to delivery
            await orders.notify_shipment(client, order.order_id, "deliver", None, "carrier")
            state = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
            assert state.status == OrderStatus.COMPLETED
        else:
            final = await asyncio.wait_for(handle.result(), 30)
            assert final.status == OrderStatus.CANCELLED
        await assert_invariants(client, settings, engine)


# --- 4 and 9. handlers never fail the workflow task ----------------------------------------


async def test_messages_without_or_with_a_malformed_payload_never_wedge_the_order(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 1})
    handle = await booked(client, worker, order)
    await handle.signal("approve_signal")  # no payload: logged and dropped
    await handle.signal("deliver", {"shipment_id": 12, "by": None})  # malformed: dropped
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", {"by": "", "hold": "NOPE"})
    cause = refused.value.cause
    assert "invalid approval: by:" in str(cause) and "\n" not in str(cause)
    assert getattr(cause, "non_retryable", False)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("cancel")
    assert "invalid cancel request" in str(refused.value.cause)
    await handle.signal("ship")  # no payload: the only shipment, by "wms"
    await handle.signal("deliver")
    state = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert state.status == OrderStatus.COMPLETED
    await assert_invariants(client, worker, engine)


@pytest.mark.settings(return_window="30s")
async def test_returning_units_sold_at_zero_refunds_nothing_instead_of_failing(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5}, price="0.00")
    order = make_order({sku: 2}, price="0.00")
    await delivered(client, worker, order)
    from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
    from starter import returns

    rma = await returns.request_return(
        client, order.order_id, ReturnRequest(lines={sku: 1}, reason="free sample")
    )
    await returns.receive_return(client, rma.rma_id)
    refund = await returns.inspect_return(
        client,
        InspectionRequest(
            rma_id=rma.rma_id,
            lines=[InspectionLine(sku=sku, quantity=1, disposition=Disposition.DISPOSE)],
        ),
    )
    assert refund.amount == Decimal("0.00")
    with pytest.raises(UserError, match="already refunded"):
        await returns.inspect_return(
            client,
            InspectionRequest(
                rma_id=rma.rma_id,
                lines=[InspectionLine(sku=sku, quantity=1, disposition=Disposition.DISPOSE)],
            ),
        )
    await assert_invariants(client, worker, engine)


# --- 6. a query never changes the result ----------------------------------------------------


@pytest.mark.settings(return_window="2s")
async def test_the_result_does_not_depend_on_whether_anyone_queried(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """The result is built from the workflow's own state, never from what a query left."""
    from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest

    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    handle = await delivered(client, worker, order)  # last query
    rma = await handle.execute_update(
        "request_return", ReturnRequest(lines={sku: 1}, reason="too big"), result_type=Rma
    )
    await handle.execute_update("receive_return", rma.rma_id, result_type=Rma)
    verdict = InspectionLine(sku=sku, quantity=1, disposition=Disposition.RESTOCK)
    await handle.execute_update(
        "inspect_return", InspectionRequest(rma_id=rma.rma_id, lines=[verdict])
    )
    final = await asyncio.wait_for(handle.result(), 60)  # nobody queried since
    assert [r.state for r in final.returns] == ["REFUNDED"]
    assert final.status == OrderStatus.REFUNDED


# --- 8. orders that can always close ---------------------------------------------------------


async def test_a_delivery_reported_before_its_ship_notice_completes_the_order(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    await booked(client, worker, order)
    await handle_of(client, order.order_id).signal("deliver", ShipmentNotice(by="carrier"))
    state = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert state.status == OrderStatus.COMPLETED and stock_of(engine, sku) == {"AMS": (3, 0)}
    assert payments_of(engine, order.order_id)["CAPTURE"] == Decimal("20.00")
    await assert_invariants(client, worker, engine)


async def test_a_parcel_declared_lost_is_not_billed_and_the_order_closes(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    await booked(client, worker, order)
    await orders.notify_shipment(client, order.order_id, "ship", None, "wms")
    await orders.wait_for(client, order.order_id, OrderStatus.SHIPPED, 30)
    await orders.notify_shipment(client, order.order_id, "lost", None, "cs-agent")
    state = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert state.shipments[0].lost and "CAPTURE" not in payments_of(engine, order.order_id)
    assert "VOID" in payments_of(engine, order.order_id)
    await assert_invariants(client, worker, engine)


@pytest.mark.settings(return_window="4s", rma_expire_after="2s")
async def test_an_rma_that_never_comes_back_expires_and_the_order_closes(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    handle = await delivered(client, worker, order)
    from domain.returns import ReturnRequest
    from starter import returns

    await returns.request_return(
        client, order.order_id, ReturnRequest(lines={sku: 1}, reason="never sent")
    )
    final = await asyncio.wait_for(handle.result(), 60)
    assert [r.state for r in final.returns] == ["EXPIRED"]
    await assert_invariants(client, worker, engine)
