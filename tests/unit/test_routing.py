"""Tests for the fulfilment routing rules engine."""

import random
from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.fulfilment import Demand, Destination, RoutingDecision, WarehouseCandidate
from domain.routing import DEFAULT_RULES, RoutingRules, load_rules, plan_fulfilment

# Real-ish coordinates so distances, days and costs are easy to reason about.
PLACES = {
    "AMS": ("NL", 52.37, 4.90),
    "FRA": ("DE", 50.11, 8.68),
    "PAR": ("FR", 48.86, 2.35),
    "MAD": ("ES", 40.42, -3.70),
    "LIS": ("PT", 38.72, -9.14),
}
ROTTERDAM = Destination(country="NL", postal_code="3011AA", latitude=51.92, longitude=4.48)


def warehouse(code: str, available: dict[str, int], capacity: int = 50) -> WarehouseCandidate:
    country, lat, lon = PLACES[code]
    return WarehouseCandidate(
        code=code,
        country=country,
        latitude=lat,
        longitude=lon,
        capacity_left=capacity,
        available=available,
    )


def demand(**quantities: int) -> list[Demand]:
    return [Demand(sku=sku, quantity=q) for sku, q in quantities.items()]


def plan(
    candidates: list[WarehouseCandidate],
    wanted: list[Demand] | None = None,
    promised_days: int = 3,
    rules: RoutingRules = DEFAULT_RULES,
    allow_split: bool = True,
) -> RoutingDecision:
    return plan_fulfilment(
        wanted if wanted is not None else demand(A=2, B=1),
        candidates,
        ROTTERDAM,
        promised_days,
        rules,
        allow_split,
    )


def shipped(decision: RoutingDecision) -> dict[str, dict[str, int]]:
    return {a.warehouse: {d.sku: d.quantity for d in a.lines} for a in decision.allocations}


def test_nearest_with_full_stock_wins() -> None:
    decision = plan([warehouse("FRA", {"A": 9, "B": 9}), warehouse("AMS", {"A": 9, "B": 9})])
    assert shipped(decision) == {"AMS": {"A": 2, "B": 1}}
    assert not decision.split and decision.unfilled == []
    assert decision.rules_version == DEFAULT_RULES.version
    assert decision.summary.startswith("AMS: nearest with full stock (")
    ams, fra = decision.candidates
    assert (ams.warehouse, fra.warehouse) == ("AMS", "FRA")
    assert ams.score is not None and fra.score is not None and ams.score < fra.score
    assert ams.distance_km == pytest.approx(57.7, abs=0.5)
    assert ams.estimated_days == 2 and ams.estimated_cost == Decimal("4.23")
    assert fra.reason == f"scored {fra.score:.2f}, behind AMS ({ams.score:.2f})"


def test_capacity_eliminates_with_reason() -> None:
    decision = plan(
        [warehouse("AMS", {"A": 9, "B": 9}, capacity=0), warehouse("FRA", {"A": 9, "B": 9})]
    )
    assert shipped(decision) == {"FRA": {"A": 2, "B": 1}}
    ams = next(c for c in decision.candidates if c.warehouse == "AMS")
    assert ams.eliminated_by == "capacity" and ams.score is None
    assert "no capacity left today" in ams.reason


def test_sla_eliminates_late_warehouse_when_another_is_on_time() -> None:
    decision = plan(
        [warehouse("MAD", {"A": 9, "B": 9}), warehouse("PAR", {"A": 9, "B": 9})],
        promised_days=2,
    )
    assert shipped(decision) == {"PAR": {"A": 2, "B": 1}}
    mad = next(c for c in decision.candidates if c.warehouse == "MAD")
    assert mad.eliminated_by == "sla"
    assert mad.estimated_days == 3
    assert mad.reason == "3 days to deliver, promised 2"


def test_allow_late_falls_back_to_the_fastest_late_warehouse() -> None:
    candidates = [
        warehouse("LIS", {"A": 9, "B": 9}),
        warehouse("MAD", {"A": 9, "B": 9}),
        warehouse("AMS", {}),  # on time but empty: must not veto the fallback
    ]
    decision = plan(candidates, promised_days=2)
    assert shipped(decision) == {"MAD": {"A": 2, "B": 1}}
    mad = next(c for c in decision.candidates if c.warehouse == "MAD")
    lis = next(c for c in decision.candidates if c.warehouse == "LIS")
    assert mad.eliminated_by is None and mad.reason.startswith("late: 3 days > promised 2")
    assert lis.eliminated_by is None and lis.reason.startswith("late: ")
    assert "late: 3 days > promised 2" in decision.summary

    strict = plan(
        candidates, promised_days=2, rules=DEFAULT_RULES.model_copy(update={"allow_late": False})
    )
    assert strict.allocations == [] and strict.unfilled == demand(A=2, B=1)
    by_code = {c.warehouse: c.eliminated_by for c in strict.candidates}
    assert by_code == {"LIS": "sla", "MAD": "sla", "AMS": "stock"}
    assert strict.summary == "unfilled: no warehouse can ship any of 3 units (sla 2, stock 1)"


def test_stock_eliminates_warehouse_without_any_of_the_order() -> None:
    decision = plan([warehouse("AMS", {"Z": 9, "A": 0}), warehouse("FRA", {"A": 9, "B": 9})])
    assert shipped(decision) == {"FRA": {"A": 2, "B": 1}}
    ams = next(c for c in decision.candidates if c.warehouse == "AMS")
    assert ams.eliminated_by == "stock" and ams.can_fill == 0
    assert ams.reason == "has none of the 3 units ordered"


def test_split_across_two_warehouses_when_none_has_everything() -> None:
    candidates = [
        warehouse("AMS", {"A": 2}),
        warehouse("FRA", {"B": 5, "A": 1}),
        warehouse("MAD", {"A": 1, "B": 1}),
    ]
    decision = plan(candidates)
    assert shipped(decision) == {"AMS": {"A": 2}, "FRA": {"B": 1}}
    assert decision.split and decision.unfilled == []
    assert decision.summary == "split: AMS 2 units, FRA 1 unit; no single warehouse had all"
    fra = next(c for c in decision.candidates if c.warehouse == "FRA")
    assert fra.reason.startswith("chosen for split: ships 1 of 3 units")
    mad = next(c for c in decision.candidates if c.warehouse == "MAD")
    assert mad.eliminated_by is None and mad.reason.endswith("; not needed")


def test_full_stock_warehouse_beats_a_nearer_partial_one() -> None:
    decision = plan([warehouse("AMS", {"A": 2}), warehouse("FRA", {"A": 9, "B": 9})])
    assert shipped(decision) == {"FRA": {"A": 2, "B": 1}}
    assert not decision.split
    assert decision.summary.startswith("FRA: best score with full stock")
    ams = next(c for c in decision.candidates if c.warehouse == "AMS")
    assert "better than FRA" in ams.reason and "fills only 2 of 3 units" in ams.reason


def test_split_respects_max_split() -> None:
    rules = DEFAULT_RULES.model_copy(update={"max_split": 2})
    candidates = [
        warehouse("AMS", {"A": 2}),
        warehouse("FRA", {"B": 1}),
        warehouse("PAR", {"C": 4}),
    ]
    decision = plan(candidates, demand(A=2, B=1, C=4), rules=rules)
    assert shipped(decision) == {"AMS": {"A": 2}, "FRA": {"B": 1}}
    assert decision.unfilled == demand(C=4)
    par = next(c for c in decision.candidates if c.warehouse == "PAR")
    assert par.reason.endswith("; split limit reached")
    assert decision.summary.endswith("; 4 units unfilled")


def test_no_split_ships_the_best_warehouse_part_and_leaves_the_rest_unfilled() -> None:
    decision = plan([warehouse("AMS", {"A": 2}), warehouse("FRA", {"B": 5})], allow_split=False)
    assert shipped(decision) == {"AMS": {"A": 2}}
    assert decision.unfilled == demand(B=1)
    assert not decision.split
    assert "split not allowed" in decision.summary
    fra = next(c for c in decision.candidates if c.warehouse == "FRA")
    assert fra.eliminated_by is None and fra.reason.endswith("; split not allowed")


def test_cost_weight_can_change_the_winner() -> None:
    # AMS is nearer but nearly full today; PAR is farther with plenty of room.
    candidates = [
        warehouse("AMS", {"A": 9, "B": 9}, capacity=1),
        warehouse("PAR", {"A": 9, "B": 9}),
    ]
    assert shipped(plan(candidates)).keys() == {"PAR"}
    cost_heavy = load_rules(DEFAULT_RULES.model_copy(update={"weight_cost": 5.0}).model_dump_json())
    assert shipped(plan(candidates, rules=cost_heavy)).keys() == {"AMS"}


def test_load_rules_from_json() -> None:
    rules = load_rules(
        '{"version": "ops-7", "weight_distance": 2, "weight_cost": 0.1, "weight_capacity": 0,'
        ' "km_per_day": 500, "base_cost": "3.50", "cost_per_km": 0.002, "allow_late": false}'
    )
    assert rules.version == "ops-7" and rules.max_split == 3
    assert rules.base_cost == Decimal("3.50") and rules.cost_per_km == Decimal("0.002")
    assert plan([warehouse("AMS", {"A": 9, "B": 9})], rules=rules).rules_version == "ops-7"
    assert load_rules(DEFAULT_RULES.model_dump_json()) == DEFAULT_RULES


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        DEFAULT_RULES.model_dump_json()[:-1] + ', "surprise": 1}',
        DEFAULT_RULES.model_copy(update={"km_per_day": 0}).model_dump_json(),
        DEFAULT_RULES.model_copy(update={"max_split": 0}).model_dump_json(),
    ],
)
def test_load_rules_rejects_bad_json(text: str) -> None:
    with pytest.raises(ValidationError):
        load_rules(text)


def test_ties_are_broken_by_warehouse_code() -> None:
    twins = [
        WarehouseCandidate(
            code=code,
            country="NL",
            latitude=52.0,
            longitude=5.0,
            capacity_left=5,
            available={"A": 9, "B": 9},
        )
        for code in ("ZED", "ALF", "MID")
    ]
    first = plan(twins)
    for order in (twins[::-1], [twins[1], twins[2], twins[0]]):
        assert plan(order) == first
    assert shipped(first).keys() == {"ALF"}
    assert [c.warehouse for c in first.candidates] == ["ALF", "MID", "ZED"]


def test_nothing_to_choose_from() -> None:
    decision = plan([])
    assert decision.allocations == [] and decision.candidates == []
    assert decision.unfilled == demand(A=2, B=1)
    assert decision.summary == "unfilled: no warehouses to choose from (3 units)"


def test_never_over_allocates_random_inputs() -> None:
    rng = random.Random(20261123)
    skus = ["A", "B", "C", "D"]
    for _ in range(400):
        wanted = {sku: rng.randint(1, 6) for sku in rng.sample(skus, rng.randint(1, 4))}
        candidates = [
            warehouse(
                code,
                {sku: rng.randint(-1, 5) for sku in rng.sample(skus, rng.randint(0, 4))},
                capacity=rng.randint(-1, 8),
            )
            for code in rng.sample(sorted(PLACES), rng.randint(0, len(PLACES)))
        ]
        rules = DEFAULT_RULES.model_copy(
            update={"max_split": rng.randint(1, 3), "allow_late": rng.random() < 0.5}
        )
        decision = plan(
            candidates,
            [Demand(sku=s, quantity=q) for s, q in wanted.items()],
            promised_days=rng.randint(1, 4),
            rules=rules,
            allow_split=rng.random() < 0.5,
        )
        by_code = {c.code: c for c in candidates}
        eliminated = {c.warehouse for c in decision.candidates if c.eliminated_by}
        codes = [a.warehouse for a in decision.allocations]
        assert len(codes) == len(set(codes)) <= rules.max_split
        assert decision.split == (len(codes) > 1)
        totals = dict.fromkeys(wanted, 0)
        for allocation in decision.allocations:
            source = by_code[allocation.warehouse]
            assert allocation.warehouse not in eliminated and source.capacity_left > 0
            for line in allocation.lines:
                assert 0 < line.quantity <= source.available.get(line.sku, 0)
                totals[line.sku] += line.quantity
        for line in decision.unfilled:
            totals[line.sku] += line.quantity
        assert totals == wanted
        assert len(decision.candidates) == len(candidates)
