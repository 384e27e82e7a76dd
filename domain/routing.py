"""Fulfilment routing rules: which warehouse(s) an order ships from, and why."""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from math import ceil

from pydantic import BaseModel, ConfigDict, Field

from domain.fulfilment import (
    Allocation,
    CandidateScore,
    Demand,
    Destination,
    RoutingDecision,
    WarehouseCandidate,
)
from domain.geography import distance_km

# Stable rule names stored in CandidateScore.eliminated_by; reports and tests key on them.
RULE_CAPACITY = "capacity"
RULE_SLA = "sla"
RULE_STOCK = "stock"
_RULES = (RULE_CAPACITY, RULE_SLA, RULE_STOCK)

_CENT = Decimal("0.01")


class RoutingRules(BaseModel):
    """Tunable routing weights and limits, loaded from JSON so operators can change them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, description="stored with every decision")
    weight_distance: float = Field(ge=0, description="score points per 1000 km")
    weight_cost: float = Field(ge=0, description="score points per currency unit of shipping")
    weight_capacity: float = Field(ge=0, description="score points at full utilisation")
    km_per_day: float = Field(gt=0, description="ground transit speed for day estimates")
    base_cost: Decimal = Field(ge=0, description="fixed part of the shipping estimate")
    cost_per_km: Decimal = Field(ge=0, description="distance part of the shipping estimate")
    allow_late: bool = Field(description="route to the fastest when none meets the promise")
    max_split: int = Field(default=3, ge=1, description="max warehouses per order")


DEFAULT_RULES = RoutingRules(
    version="2026-11-default",
    weight_distance=1.0,
    weight_cost=0.5,
    weight_capacity=2.0,
    km_per_day=800,
    base_cost=Decimal("4.00"),
    cost_per_km=Decimal("0.004"),
    allow_late=True,
    max_split=3,
)


def load_rules(text: str) -> RoutingRules:
    """Parse routing rules from JSON text (the caller reads the file).

    Args:
        text: a JSON object with the fields of `RoutingRules`.

    Returns:
        The validated rules.

    Raises:
        pydantic.ValidationError: malformed JSON, unknown fields or out-of-range values.
    """
    return RoutingRules.model_validate_json(text)


@dataclass(eq=False)
class _Option:
    """Working state for one candidate while the rules run."""

    candidate: WarehouseCandidate
    distance: float
    days: int
    cost: Decimal
    can_fill: int
    fills_all: bool
    score: float | None = None
    eliminated_by: str | None = None
    reason: str = ""
    late: bool = False
    assigned: int = 0

    @property
    def code(self) -> str:
        return self.candidate.code

    def eliminate(self, rule: str, reason: str) -> None:
        self.eliminated_by, self.reason = rule, reason


def plan_fulfilment(
    demand: list[Demand],
    candidates: list[WarehouseCandidate],
    destination: Destination,
    promised_days: int,
    rules: RoutingRules,
    allow_split: bool,
) -> RoutingDecision:
    """Choose the warehouse(s) that ship an order and record why each candidate won or lost.

    Rules run in order: "capacity" (nothing left to ship today), "sla" (slower than promised,
    unless `rules.allow_late` and no stocked warehouse is on time), "stock" (has none of the
    order). Survivors are ranked: full fill first, then (when all are late) fewer days, then
    score (lower is better), then warehouse code.

    Args:
        demand: what the order needs; repeated SKUs are added together.
        candidates: every warehouse that could ship, with its stock and capacity.
        destination: where the goods go.
        promised_days: delivery promise in days from today.
        rules: the weights and limits to apply.
        allow_split: whether the order may ship from more than one warehouse.

    Returns:
        The allocations (one per shipment), what stays unfilled, and every candidate's score.
    """
    wanted: dict[str, int] = {}
    for line in demand:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    total = sum(wanted.values())
    options = [
        _measure(c, destination, wanted, rules) for c in sorted(candidates, key=lambda c: c.code)
    ]

    for o in options:
        if o.candidate.capacity_left <= 0:
            o.eliminate(RULE_CAPACITY, f"no capacity left today ({o.candidate.capacity_left})")
    open_ = [o for o in options if o.eliminated_by is None]
    # Only a stocked warehouse counts as "meeting the SLA": an empty one nearby must not veto
    # the late fallback, or the order would go unfilled although a slower warehouse has it.
    late_fallback = rules.allow_late and not any(
        o.days <= promised_days and o.can_fill > 0 for o in open_
    )
    for o in open_:
        if o.days <= promised_days:
            continue
        if late_fallback:
            o.late = True
        else:
            o.eliminate(RULE_SLA, f"{_days(o.days)} to deliver, promised {promised_days}")
    for o in open_:
        if o.eliminated_by is None and o.can_fill == 0:
            o.eliminate(RULE_STOCK, f"has none of the {_units(total)} ordered")

    survivors = [o for o in options if o.eliminated_by is None]
    for o in survivors:
        o.score = _score(o, rules)
    survivors.sort(key=lambda o: (not o.fills_all, o.days if late_fallback else 0, o.score, o.code))

    remaining = dict(wanted)
    allocations: list[Allocation] = []
    chosen: list[_Option] = []
    splitting = bool(survivors) and allow_split and not survivors[0].fills_all
    # Full fill or no split: one shipment from the top-ranked warehouse, whatever it has.
    for o in survivors if splitting else survivors[:1]:
        if len(chosen) == rules.max_split:
            break
        lines = _take(o.candidate.available, remaining)
        if lines:
            o.assigned = sum(line.quantity for line in lines)
            chosen.append(o)
            allocations.append(Allocation(warehouse=o.code, lines=lines))
    unfilled = [Demand(sku=sku, quantity=q) for sku, q in remaining.items() if q > 0]

    complete = not unfilled
    _explain_survivors(
        survivors, chosen, splitting, complete, total, rules.max_split, promised_days
    )
    ordered = survivors + [o for o in options if o.eliminated_by is not None]
    return RoutingDecision(
        allocations=allocations,
        unfilled=unfilled,
        candidates=[
            CandidateScore(
                warehouse=o.code,
                distance_km=o.distance,
                estimated_days=o.days,
                estimated_cost=o.cost,
                can_fill=o.can_fill,
                score=o.score,
                eliminated_by=o.eliminated_by,
                reason=o.reason,
            )
            for o in ordered
        ],
        split=len(allocations) > 1,
        rules_version=rules.version,
        summary=_summary(
            options, survivors, allocations, chosen, unfilled, allow_split, total, promised_days
        ),
    )


def _measure(
    candidate: WarehouseCandidate,
    destination: Destination,
    wanted: dict[str, int],
    rules: RoutingRules,
) -> _Option:
    # Rounded once so the reported distance, days and cost all derive from the same number.
    c, d = candidate, destination
    km = round(distance_km(c.latitude, c.longitude, d.latitude, d.longitude), 1)
    cost = (rules.base_cost + rules.cost_per_km * Decimal(str(km))).quantize(
        _CENT, rounding=ROUND_HALF_EVEN
    )
    can_fill = sum(min(q, max(0, candidate.available.get(sku, 0))) for sku, q in wanted.items())
    return _Option(
        candidate=candidate,
        distance=km,
        days=1 + ceil(km / rules.km_per_day),
        cost=cost,
        can_fill=can_fill,
        fills_all=can_fill == sum(wanted.values()) and can_fill > 0,
    )


def _score(o: _Option, rules: RoutingRules) -> float:
    # The candidate carries only what is left today, not its daily total, so 1/capacity_left
    # stands in for utilisation: 1.0 with one slot left, tending to 0 with plenty of room.
    utilisation = 1.0 / o.candidate.capacity_left
    score = (
        rules.weight_distance * o.distance / 1000
        + rules.weight_cost * float(o.cost)
        + rules.weight_capacity * utilisation
    )
    # Rounded so float noise cannot decide a tie that the warehouse code should break.
    return round(score, 6)


def _take(available: dict[str, int], remaining: dict[str, int]) -> list[Demand]:
    """Assign what one warehouse can fill of what is still open; updates `remaining`."""
    lines: list[Demand] = []
    for sku, wanted in remaining.items():
        quantity = min(wanted, max(0, available.get(sku, 0)))
        if quantity > 0:
            lines.append(Demand(sku=sku, quantity=quantity))
            remaining[sku] = wanted - quantity
    return lines


def _explain_survivors(
    survivors: list[_Option],
    chosen: list[_Option],
    splitting: bool,
    complete: bool,
    total: int,
    max_split: int,
    promised: int,
) -> None:
    if not survivors:
        return
    lead = survivors[0]
    for o in survivors:
        late = f"late: {_days(o.days)} > promised {promised}, none on time; " if o.late else ""
        if o.assigned:
            role = "chosen for split" if len(chosen) > 1 else "chosen"
            part = f"all {total}" if o.assigned == total else f"{o.assigned} of {total}"
            o.reason = f"{late}{role}: ships {part} units, scored {o.score:.2f}"
            continue
        fill = "all" if o.fills_all else f"{o.can_fill} of {total}"
        if o.score is not None and lead.score is not None and o.score < lead.score:
            why = f"scored {o.score:.2f}, better than {lead.code} ({lead.score:.2f}) but "
            why += f"fills only {fill} units" if not o.fills_all else f"takes {_days(o.days)}"
        else:
            why = f"scored {o.score:.2f}, behind {lead.code} ({lead.score:.2f})"
        if splitting and complete:
            why += "; not needed"
        elif splitting:
            why += "; split limit reached" if len(chosen) == max_split else "; nothing left to add"
        elif not lead.fills_all:
            why += "; split not allowed"
        o.reason = late + why


def _summary(
    options: list[_Option],
    survivors: list[_Option],
    allocations: list[Allocation],
    chosen: list[_Option],
    unfilled: list[Demand],
    allow_split: bool,
    total: int,
    promised: int,
) -> str:
    if total == 0:
        return "nothing to route: the order has no lines"
    if not allocations:
        if not options:
            return f"unfilled: no warehouses to choose from ({_units(total)})"
        counts = {r: sum(o.eliminated_by == r for o in options) for r in _RULES}
        tally = ", ".join(f"{rule} {n}" for rule, n in counts.items() if n)
        return f"unfilled: no warehouse can ship any of {_units(total)} ({tally})"
    missing = sum(d.quantity for d in unfilled)
    tail = f"; {_units(missing)} unfilled" if missing else ""
    if any(o.late for o in chosen):
        tail += f"; late: {_days(max(o.days for o in chosen))} > promised {promised}"
    if len(chosen) > 1:
        parts = ", ".join(
            f"{a.warehouse} {_units(sum(d.quantity for d in a.lines))}" for a in allocations
        )
        return f"split: {parts}; no single warehouse had all{tail}"
    o = chosen[0]
    numbers = f"({o.distance:.0f} km, {_days(o.days)}, {o.cost})"
    if o.fills_all:
        nearest = min(s.distance for s in survivors)
        why = "nearest" if o.distance == nearest else "best score"
        return f"{o.code}: {why} with full stock {numbers}{tail}"
    limit = "" if allow_split else " and split not allowed"
    return f"{o.code}: {o.can_fill} of {total} units {numbers}, no warehouse had all{limit}{tail}"


def _units(n: int) -> str:
    return f"{n} unit" if n == 1 else f"{n} units"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"
