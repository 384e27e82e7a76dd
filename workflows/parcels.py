"""Following an order's parcels: ship, deliver and lost notices, goods out, SLA escalation."""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.shipping import ShippingActivities
    from domain.commands import CommandRefused, ShipmentNotice, pick_shipment
    from domain.details import parcels_wanted
    from domain.fulfilment import Shipment, wave_step
    from domain.policy import SlaPolicy
    from domain.sla import format_duration
    from domain.stages import Command, Stage
    from domain.statuses import OrderStatus
    from domain.steps import ShipmentEvent
    from workflows.steps import run_step


class OrderSteps(Protocol):
    """What the parcels need from the order workflow."""

    @property
    def order_id(self) -> str: ...
    async def wait(
        self,
        condition: Callable[[], bool],
        timeout: timedelta | None,
        *,
        summary: str,
        waiting_for: str,
    ) -> bool: ...
    async def escalate(self, why: str) -> None: ...
    async def record(self, step: str, why: str, *, actor: str = "orderflow") -> None: ...
    async def exception(self, step: str, why: str, *, actor: str = "orderflow") -> None: ...
    async def move(
        self, status: OrderStatus, why: str, *, step: str, actor: str = "orderflow"
    ) -> None: ...


class Parcels:
    """One entry per shipment; handlers mark the fact and queue it, `follow` books it."""

    def __init__(self, order: OrderSteps) -> None:
        self._order = order
        self._shipments: list[Shipment] = []
        self._notices: list[tuple[str, str, str]] = []  # (kind, shipment_id, by)
        self._late: list[tuple[str, str]] = []  # shipped after a stop: (shipment_id, by)
        self._wave = 1
        self.labels_voided = False
        self.delivered_at: datetime | None = None

    @property
    def any_shipped(self) -> bool:
        return any(s.shipped for s in self._shipments)

    @property
    def shipments(self) -> list[Shipment]:
        """Every parcel of the order, all waves."""
        return self._shipments

    def _done(self, shipment: Shipment) -> bool:
        return shipment.delivered or shipment.lost

    def booked(self, shipments: list[Shipment], wave: int = 1) -> None:
        """Labels exist for a new wave: from now on its notices can be accepted."""
        self._shipments = self._shipments + shipments
        self._wave = wave

    def candidates(self, kind: str) -> dict[str, bool]:
        """{shipment: done} for a notice kind.

        A deliver notice may come before its ship notice (carrier webhooks arrive out of
        order): a booked parcel can be delivered, which implies it shipped.
        """
        if kind == "ship":
            return {s.shipment_id: s.shipped for s in self._shipments}
        if kind == "lost":
            return {s.shipment_id: self._done(s) for s in self._shipments if s.shipped}
        return {s.shipment_id: self._done(s) for s in self._shipments}

    def accept(self, command: Command, notice: ShipmentNotice, stage: Stage) -> Stage:
        """Take a notice from a signal handler; returns the order's stage after it.

        Raises:
            CommandRefused: it makes no sense now (the handler logs and drops it).
        """
        kind = command.value
        past = {"ship": "shipped", "deliver": "delivered", "lost": "closed"}[kind]
        shipment_id = pick_shipment(notice, self.candidates(kind), kind, past)
        shipment = next(s for s in self._shipments if s.shipment_id == shipment_id)
        if stage == Stage.STOPPING:
            if self.labels_voided:
                raise CommandRefused(
                    f"{shipment_id}: its label was voided when the order was cancelled"
                )
            shipment.shipped = True
            self._late.append((shipment_id, notice.by))
            return stage
        # The notice is the fact; stock and read-model bookkeeping follow in `follow`.
        if kind == "lost":
            shipment.lost = True
        elif kind == "deliver" and not shipment.shipped:
            shipment.shipped = True
            self._notices.append(("ship", shipment_id, notice.by))
        if kind == "ship":
            shipment.shipped = True
        elif kind == "deliver":
            shipment.delivered = True
        self._notices.append((kind, shipment_id, notice.by))
        return Stage.IN_TRANSIT

    async def follow(self, sla: SlaPolicy, promised: date) -> None:
        """Process notices until every parcel is delivered (or lost); escalate when late.

        Shipping is late `ship_escalate_after` after labels (again every such interval);
        delivery is late after the end of the promised day plus `delivery_grace`, then again
        every `delivery_grace` until the carrier delivers or a person declares the parcel lost.
        """
        promised_by = datetime.combine(promised + timedelta(days=1), time.min, tzinfo=UTC)
        late_delivery = False
        while not all(self._done(s) for s in self._shipments) or self._notices:
            if not self._notices:
                if not all(s.shipped for s in self._shipments):
                    stage, limit = "ship", sla.ship_escalate_after
                    why = f"no ship notice within {format_duration(limit)}"
                    summary = f"shipping SLA: escalate after {format_duration(limit)}"
                elif late_delivery:
                    stage, limit = "deliver", sla.delivery_grace
                    why = (
                        f"still not delivered {format_duration(limit)} after the last escalation "
                        "(orderflow lost ORDER if the carrier lost it)"
                    )
                    summary = f"delivery SLA: escalate again after {format_duration(limit)}"
                else:
                    deadline = promised_by + sla.delivery_grace
                    stage = "deliver"
                    limit = max(deadline - workflow.now(), timedelta(seconds=1))
                    grace = format_duration(sla.delivery_grace)
                    why = f"not delivered by {promised.isoformat()} (+{grace})"
                    summary = (
                        f"delivery SLA: escalate if not delivered by {promised.isoformat()} "
                        f"(+{format_duration(sla.delivery_grace)})"
                    )
                if not await self._order.wait(
                    lambda: bool(self._notices),
                    limit,
                    summary=summary,
                    waiting_for=parcels_wanted(self._shipments),
                ):
                    late_delivery = late_delivery or stage == "deliver"
                    await self._order.escalate(why)
                continue
            kind, shipment_id, by = self._notices.pop(0)
            await self._process(kind, shipment_id, by)

    def _event(self, shipment_id: str, by: str, state: str) -> ShipmentEvent:
        shipment = next(s for s in self._shipments if s.shipment_id == shipment_id)
        return ShipmentEvent(
            order_id=self._order.order_id,
            shipment_id=shipment_id,
            warehouse=shipment.warehouse,
            actor=by,
            state=state,
        )

    async def _process(self, kind: str, shipment_id: str, by: str) -> None:
        if kind == "ship":
            event = self._event(shipment_id, by, "SHIPPED")
            await run_step(
                InventoryActivities.ship_stock, event, summary=f"goods out for {shipment_id}"
            )
            await run_step(
                ShippingActivities.record_shipment_progress, event, summary=f"{shipment_id} shipped"
            )
            if all(s.shipped for s in self._shipments) and not any(
                k == "ship" for k, _, _ in self._notices
            ):
                await self._order.move(
                    OrderStatus.SHIPPED,
                    f"shipped by {by}",
                    step=wave_step("shipped", self._wave),
                    actor=by,
                )
            return
        state = "LOST" if kind == "lost" else "DELIVERED"
        await run_step(
            ShippingActivities.record_shipment_progress,
            self._event(shipment_id, by, state),
            summary=f"{shipment_id} {state.lower()}",
        )
        if kind == "lost":
            await self._order.record(
                f"lost-{shipment_id}",
                f"{shipment_id} lost by the carrier (reported by {by}): not billed; "
                "claim it from the carrier",
                actor=by,
            )
        if all(self._done(s) for s in self._shipments) and not self._notices:
            self.delivered_at = workflow.now()
            await self._order.move(
                OrderStatus.DELIVERED,
                f"delivered ({by})",
                step=wave_step("delivered", self._wave),
                actor=by,
            )

    async def book_late_notices(self) -> None:
        """Parcels that left after the order was stopped: goods out, and a person told.

        A cancel accepted means the warehouse was told to stop; a parcel that left anyway is
        an exception for a person (recall it or bill it). Its units are booked out, never
        released back into available stock, and its label stays live.
        """
        while self._late:
            shipment_id, by = self._late.pop(0)
            event = self._event(shipment_id, by, "SHIPPED_AFTER_CANCEL")
            await run_step(
                InventoryActivities.ship_stock, event, summary=f"goods out for {shipment_id}"
            )
            await run_step(
                ShippingActivities.record_shipment_progress,
                event,
                summary=f"{shipment_id} shipped after the stop",
            )
            why = (
                f"exception: {shipment_id} left the warehouse after the order was stopped "
                f"(reported by {by}); recall the parcel or bill the customer"
            )
            await self._order.exception(f"late-ship-{shipment_id}", why, actor=by)
