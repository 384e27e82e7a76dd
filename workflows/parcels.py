"""Following an order's parcels: ship and deliver notices, goods out, SLA escalation."""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.shipping import ShippingActivities
    from domain.commands import CommandRefused, ShipmentNotice, pick_shipment
    from domain.fulfilment import Shipment, wave_step
    from domain.policy import SlaPolicy
    from domain.statuses import OrderStatus
    from domain.steps import ShipmentEvent
    from workflows.steps import run_step


class OrderSteps(Protocol):
    """What the parcels need from the order workflow."""

    @property
    def order_id(self) -> str: ...
    async def wait(self, condition: Callable[[], bool], timeout: timedelta | None) -> bool: ...
    async def escalate(self, why: str) -> None: ...
    async def move(
        self, status: OrderStatus, why: str, *, step: str, actor: str = "orderflow"
    ) -> None: ...


class Parcels:
    """One entry per shipment; notices are queued by handlers and processed in order."""

    def __init__(self, order: OrderSteps) -> None:
        self._order = order
        self._shipments: list[Shipment] = []
        self._notices: list[tuple[str, str, str]] = []  # (kind, shipment_id, by)
        self._wave = 1
        self.delivered_at: datetime | None = None

    @property
    def any_shipped(self) -> bool:
        return any(s.shipped for s in self._shipments)

    @property
    def shipments(self) -> list[Shipment]:
        """Every parcel of the order, all waves."""
        return self._shipments

    def booked(self, shipments: list[Shipment], wave: int = 1) -> None:
        """Labels exist for a new wave: from now on its notices can be accepted."""
        self._shipments = self._shipments + shipments
        self._wave = wave

    def candidates(self, kind: str) -> dict[str, bool]:
        """{shipment: done} for a notice kind; only shipped parcels can be delivered."""
        if kind == "ship":
            return {s.shipment_id: s.shipped for s in self._shipments}
        return {s.shipment_id: s.delivered for s in self._shipments if s.shipped}

    def accept(self, kind: str, notice: ShipmentNotice) -> None:
        """Take a notice from a signal; one that makes no sense now is logged and dropped."""
        past = "shipped" if kind == "ship" else "delivered"
        try:
            shipment_id = pick_shipment(notice, self.candidates(kind), kind, past)
        except CommandRefused as refused:
            workflow.logger.warning("%s notice ignored: %s", kind, refused)
            return
        shipment = next(s for s in self._shipments if s.shipment_id == shipment_id)
        # The notice is the fact; stock and read-model bookkeeping follow in `follow`.
        if kind == "ship":
            shipment.shipped = True
        else:
            shipment.delivered = True
        self._notices.append((kind, shipment_id, notice.by))

    async def follow(self, sla: SlaPolicy, promised: date) -> None:
        """Process notices until every parcel is delivered; escalate when a stage is late.

        Shipping is late `ship_escalate_after` after labels (again every such interval);
        delivery is late after the end of the promised day plus `delivery_grace`.
        """
        promised_by = datetime.combine(promised + timedelta(days=1), time.min, tzinfo=UTC)
        late_delivery = False
        while not all(s.delivered for s in self._shipments) or self._notices:
            if not self._notices:
                if not all(s.shipped for s in self._shipments):
                    stage, limit = "ship", sla.ship_escalate_after
                    why = f"no ship notice within {limit}"
                elif late_delivery:
                    stage, limit = "deliver", sla.delivery_grace
                    why = f"still not delivered {limit} after the last escalation"
                else:
                    deadline = promised_by + sla.delivery_grace
                    stage = "deliver"
                    limit = max(deadline - workflow.now(), timedelta(seconds=1))
                    why = f"not delivered by {promised.isoformat()} (+{sla.delivery_grace})"
                if not await self._order.wait(lambda: bool(self._notices), limit):
                    late_delivery = late_delivery or stage == "deliver"
                    await self._order.escalate(why)
                continue
            kind, shipment_id, by = self._notices.pop(0)
            await self._process(kind, shipment_id, by)

    async def _process(self, kind: str, shipment_id: str, by: str) -> None:
        shipment = next(s for s in self._shipments if s.shipment_id == shipment_id)
        event = ShipmentEvent(
            order_id=self._order.order_id,
            shipment_id=shipment_id,
            warehouse=shipment.warehouse,
            actor=by,
        )
        if kind == "ship":
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
        await run_step(
            ShippingActivities.record_shipment_progress,
            event.model_copy(update={"delivered": True}),
            summary=f"{shipment_id} delivered",
        )
        if all(s.delivered for s in self._shipments) and not self._notices:
            self.delivered_at = workflow.now()
            await self._order.move(
                OrderStatus.DELIVERED,
                f"delivered ({by})",
                step=wave_step("delivered", self._wave),
                actor=by,
            )
