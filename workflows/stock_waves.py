"""Stock for an order: reserve, route and book in waves, wait on backorders, bill what shipped."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.payments import PaymentActivities
    from activities.shipping import ShippingActivities
    from domain.commands import CancelRequest
    from domain.details import stock_wanted
    from domain.fulfilment import Allocation, AllocationResult, Demand, Shipment, wave_step
    from domain.money import round_money
    from domain.sla import format_duration
    from domain.statuses import FulfilmentPolicy, OrderStatus
    from domain.steps import (
        BookingRequest,
        CaptureRequest,
        CaptureResult,
        ReserveRequest,
        ValidatedOrder,
    )
    from workflows import versions
    from workflows.journal import OrderCancelled
    from workflows.payment_hold import PaymentHold, PaymentRefused
    from workflows.steps import BusinessFailure, run_step
    from workflows.versions import CAPTURE_PER_WAVE, ROUTED_WITH_BOOKING


class StockWaves(PaymentHold):
    """The part of OrderWorkflow from reservation to the last parcel delivered, and its bills."""

    _unpaid: bool = False  # finance refused the payment of goods already delivered
    _captured_with: tuple[str, ...] = ()  # the authorisations captures were taken against

    _restock_requests: int  # receipts that offered stock (the stock_arrived Update)
    _restock_attempts: int  # of those, the ones a reservation attempt has answered
    _backorder_waits: int

    async def _ship_in_waves(self, v: ValidatedOrder) -> None:
        """Route, book and follow what is held; under ship-when-available, ship what is there
        now and the rest as it arrives (one wave per restock), until nothing is backordered."""
        partial = v.fulfilment_policy == FulfilmentPolicy.SHIP_WHEN_AVAILABLE
        expires = workflow.now() + v.sla.backorder_expire_after
        round_, wave, after_wave = 0, 0, False
        allocation = await self._reserve(v, round_)
        while True:
            while allocation.backordered and not (partial and allocation.reservations):
                if not await self._await_restock(v, allocation, expires, recheck=after_wave):
                    if wave == 0:
                        self._cancel = CancelRequest(
                            reason="backorder expired after "
                            f"{format_duration(v.sla.backorder_expire_after)}",
                            by="orderflow",
                        )
                        raise OrderCancelled()
                    await self.record(
                        f"dropped-{wave}",
                        "backorder expired: not shipped "
                        + ", ".join(f"{d.sku} x{d.quantity}" for d in allocation.backordered),
                    )
                    return
                after_wave = False
                round_ += 1
                requests = self._restock_requests
                allocation = await self._reserve(v, round_)
                self._restock_attempts = requests
            if versions.patched(CAPTURE_PER_WAVE):
                await self._authorised_for_the_rest(v)
            wave += 1
            summary = allocation.decision.summary if allocation.decision else "routed"
            routed: str | None = summary
            if versions.patched(ROUTED_WITH_BOOKING):
                self.note(OrderStatus.ROUTED, summary)  # the booking step writes its line
            else:
                await self.move(OrderStatus.ROUTED, summary, step=wave_step("routed", wave))
                routed = None
            booked = await self.unless_cancelled(
                run_step(
                    ShippingActivities.book_shipments,
                    BookingRequest(
                        order_id=self._order.order_id,
                        currency=self._order.currency,
                        destination=v.destination,
                        promised_date=v.promised_date,
                        allocations=_allocations(allocation),
                        wave=wave,
                        routed=routed,
                    ),
                    summary="rate-shop and book carrier labels",
                    timeout=timedelta(minutes=2),
                    heartbeat=timedelta(seconds=20),
                    attempts=v.sla.booking_attempts,
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            )
            self._parcels.booked(booked, wave)
            self._state.shipments = self._parcels.shipments
            self.note(OrderStatus.AWAITING_SHIPMENT, "labels booked")
            self.checkpoint()
            await self._parcels.follow(v.sla, v.promised_date)
            if not allocation.backordered:
                return
            if versions.patched(CAPTURE_PER_WAVE):
                await self.bill_delivered(v, final=False)
            allocation = allocation.model_copy(update={"reservations": []})
            after_wave = True

    async def _await_restock(
        self,
        v: ValidatedOrder,
        allocation: AllocationResult,
        expires: datetime,
        *,
        recheck: bool = False,
    ) -> bool:
        """BACKORDERED until a receipt offers stock (True) or the backorder expires (False).

        `recheck`: the last reservation attempt was made before a wave shipped, when the read
        model did not say BACKORDERED, so a receipt in between did not see this order: try
        once more at once instead of waiting.
        """
        self._backorder_waits += 1
        # Written to the read model too: that is where a goods receipt looks for backorders.
        await self.move(
            OrderStatus.BACKORDERED,
            "waiting for stock: "
            + ", ".join(f"{d.sku} x{d.quantity}" for d in allocation.backordered),
            step=f"backordered-{self._backorder_waits}",
        )
        if recheck:
            return True
        return await self.wait(
            lambda: self._restock_requests > self._restock_attempts,
            max(expires - workflow.now(), timedelta(seconds=1)),
            summary=f"backorder expires {expires.date().isoformat()} "
            f"({format_duration(v.sla.backorder_expire_after)} after the first reservation)",
            waiting_for=stock_wanted(allocation.backordered),
        )

    async def _reserve(self, v: ValidatedOrder, round_: int) -> AllocationResult:
        days = max((v.promised_date - workflow.now().date()).days, 1)
        allocation: AllocationResult = await run_step(
            InventoryActivities.reserve_inventory,
            ReserveRequest(
                order=self._order,
                destination=v.destination,
                promised_days=days,
                policy=v.fulfilment_policy,
                round=round_,
            ),
            summary=f"route and hold stock (round {round_})",
        )
        self._state.allocation = allocation
        if not allocation.backordered:
            self.note(
                OrderStatus.RESERVED,
                "stock held at "
                + ", ".join(sorted({r.warehouse for r in allocation.reservations})),
            )
        self.checkpoint()
        return allocation

    # --- billing what shipped -----------------------------------------------------------

    def delivered_units(self) -> dict[str, int]:
        """Units per SKU that reached the customer (lost parcels excluded)."""
        return _units(s for s in self._state.shipments if not s.lost)

    def _goods(self, units: dict[str, int]) -> Decimal:
        """The net value of `units` at the order's prices."""
        return round_money(
            sum(
                (line.unit_price * units.get(line.sku, 0) for line in self._order.lines),
                Decimal(0),
            ),
            self._order.currency,
        )

    async def _authorised_for_the_rest(self, v: ValidatedOrder) -> None:
        """Before a wave is booked: the money for what is not billed yet stays authorised.

        Raises:
            BusinessFailure: "PaymentDeclined" when finance refused the payment: nothing more
                ships (an order with nothing shipped ends REJECTED, else the rest is dropped).
        """
        billed = self._invoiced_units()
        unbilled = {
            line.sku: max(line.quantity - billed.get(line.sku, 0), 0) for line in self._order.lines
        }
        try:
            await self.keep_authorised(v, self._goods(unbilled))
        except PaymentRefused as refused:
            raise BusinessFailure("PaymentDeclined", str(refused)) from None

    async def bill_delivered(self, v: ValidatedOrder, *, final: bool) -> None:
        """Capture and invoice the parcels delivered since the last capture (one wave).

        A lapsed authorisation is renewed first (a decline holds the order for finance); the
        gateway refusing a capture because the authorisation lapsed all the same (its clock,
        not ours) renews it and captures again.

        Raises:
            BusinessFailure: "PaymentDeclined" when finance refused the payment of a wave that
                is not the last: the goods are delivered but not billed (an exception for
                finance), and nothing more ships.
        """
        parcels = [
            s for s in self._state.shipments if s.delivered and not s.lost and s.invoice_no is None
        ]
        units = _units(parcels)
        amount = self._goods(units)
        if amount <= 0 or self._unpaid:
            return
        n = len(self._state.captures) + 1
        lapses = 0
        while True:
            try:
                await self.keep_authorised(v, amount, delivered=True)
            except PaymentRefused as refused:
                self._unpaid = True
                what = ", ".join(f"{sku} x{qty}" for sku, qty in sorted(units.items()))
                await self.exception(
                    f"unbilled-{n}",
                    f"delivered but not billed ({refused}): {what} for {amount} "
                    f"{self._order.currency} net; invoice and collect it outside orderflow",
                )
                if final:
                    return
                raise BusinessFailure("PaymentDeclined", str(refused)) from None
            try:
                result = await self._capture_step(
                    v,
                    units,
                    amount,
                    f"capture payment and issue invoice {n}",
                    capture_no=n,
                    parcels=[s.shipment_id for s in parcels],
                    final=final,
                )
            except BusinessFailure as failure:
                lapses += 1
                if failure.kind != "AuthorizationLapsed" or self._state.payment is None:
                    raise
                if lapses > 3:  # the gateway's clock and ours disagree for good: a person
                    raise
                self._state.payment = self._state.payment.model_copy(
                    update={"valid_until": workflow.now()}  # the gateway's clock decides
                )
                continue
            break
        self._state.captures.append(result)
        self._state.capture = result
        if self._state.payment is not None:
            self._captured_with += (self._state.payment.reference,)
        for shipment in parcels:
            shipment.invoice_no = result.invoice_no
        # The capture step wrote the read model (COMPLETED, or DELIVERED: more to come).
        what = f"invoice {result.invoice_no}"
        if final:
            self.note(OrderStatus.COMPLETED, what)
        else:
            self._state.events.append(self._entry(f"{what}: {result.amount} {result.currency}"))

    async def capture(self, v: ValidatedOrder) -> None:
        """Take the money for what was delivered, issue the invoice; nothing left to undo.

        Nothing to bill (every parcel lost, or only 0.00 lines): the authorisation is voided.
        Versioned: orders past their first booking before capture per wave capture once, here.
        """
        if versions.patched(CAPTURE_PER_WAVE):
            await self.bill_delivered(v, final=True)
            captures = self._state.captures
            if not captures and not self._unpaid:
                await self._nothing_billed()
                return
            await self._release_the_rest()
            self._compensations.clear()  # money taken, goods delivered: nothing to undo
            if self._state.status == OrderStatus.COMPLETED:  # the last capture said so
                return
            if captures:  # the last wave was billed before (the rest dropped, or refused)
                invoices = ", ".join(c.invoice_no for c in captures)
                await self.move(OrderStatus.COMPLETED, f"invoices {invoices}", step="billed")
            else:
                await self.move(
                    OrderStatus.COMPLETED, "delivered, not billed: payment refused", step="unpaid"
                )
            return
        delivered = self.delivered_units()
        amount = self._goods(delivered)
        assert self._state.payment is not None
        if amount <= 0:
            await self._nothing_billed()
            return
        self._state.capture = await self._capture_step(
            v, delivered, amount, "capture payment and issue invoice"
        )
        self._compensations.clear()  # money taken and goods delivered: nothing left to undo
        self.note(OrderStatus.COMPLETED, f"invoice {self._state.capture.invoice_no}")

    async def _capture_step(
        self, v: ValidatedOrder, units: dict[str, int], amount: Decimal, summary: str, **more: Any
    ) -> CaptureResult:
        """The capture step for `units` (worth `amount` net) against the authorisation held."""
        assert self._state.payment is not None
        result: CaptureResult = await run_step(
            PaymentActivities.capture_payment,
            CaptureRequest(
                order_id=self._order.order_id,
                authorization=self._state.payment,
                amount=amount,
                customer=v.customer,
                delivered=units,
                **more,
            ),
            summary=summary,
        )
        return result

    def billed_units(self) -> dict[str, int]:
        """Units per SKU invoiced (what a return may credit): the parcels an invoice billed;
        orders captured once, before capture per wave, billed everything delivered."""
        if self._state.captures or self._unpaid:
            return self._invoiced_units()
        return self.delivered_units()

    def _invoiced_units(self) -> dict[str, int]:
        return _units(s for s in self._state.shipments if s.invoice_no is not None)

    async def _release_the_rest(self) -> None:
        """After the last capture: a renewed authorisation that no capture used (the rest
        was dropped, or the last wave was lost) is voided, not left on the customer's card
        until it lapses. The order's first authorisation, captured in part, is settled by the
        gateway (its remainder lapses)."""
        payment = self._state.payment
        if payment is None or payment.reauthorization == 0:
            return
        if payment.reference in self._captured_with:
            return
        await run_step(
            PaymentActivities.void_authorization,
            payment,
            summary="void the renewed authorisation nothing was captured against",
        )

    async def _nothing_billed(self) -> None:
        self._compensations = ["void_authorization"]
        await self.compensate()
        await self.move(
            OrderStatus.COMPLETED,
            "nothing to bill: nothing of value was delivered",
            step="nothing-billed",
        )

    async def drop_the_rest(self, failure: BusinessFailure) -> None:
        """A later wave failed for good after earlier ones shipped: undo only what did not
        ship (its stock and labels), keep the authorisation for the capture of what did, and
        tell operations."""
        self._compensations = [c for c in self._compensations if c != "void_authorization"]
        await self.compensate()
        why = f"the rest of the order was dropped: {failure.kind}: {failure}"
        billed = (
            "the wave delivered last is not billed (payment refused)"
            if self._unpaid
            else "billed for what shipped"
        )
        await self.exception("dropped-failed", f"{why}; {billed}")
        self._compensations = ["void_authorization"]


def _units(shipments: Iterable[Shipment]) -> dict[str, int]:
    """Units per SKU in `shipments`."""
    units: dict[str, int] = {}
    for shipment in shipments:
        for line in shipment.lines:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


def _allocations(allocation: AllocationResult) -> list[Allocation]:
    """One allocation per warehouse from what is actually held (all backorder rounds merged)."""
    held: dict[str, dict[str, int]] = {}
    for r in allocation.reservations:
        skus = held.setdefault(r.warehouse, {})
        skus[r.sku] = skus.get(r.sku, 0) + r.quantity
    return [
        Allocation(warehouse=w, lines=[Demand(sku=k, quantity=q) for k, q in sorted(skus.items())])
        for w, skus in sorted(held.items())
    ]
