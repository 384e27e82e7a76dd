"""Tests for the simulated carriers: idempotent booking, outages, flakiness, voids, tracking."""

import random
import re
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from activities.carriers import (
    Carrier,
    CarrierError,
    CarrierUnavailable,
    InMemoryLabelBook,
    Label,
    SimulatedCarrier,
    carriers_from_config,
)
from domain.fulfilment import CarrierQuote
from domain.shipping import DEFAULT_CARRIERS, CarrierProfile

MONDAY = date(2024, 6, 10)
PROFILES = {p.code: p for p in DEFAULT_CARRIERS}


def no_sleep(_: float) -> None:
    return None


def carrier(
    code: str = "PARCELCO",
    labels: InMemoryLabelBook | None = None,
    *,
    failure_rate: float = 0.0,
    down: bool = False,
    seed: int = 7,
) -> SimulatedCarrier:
    return SimulatedCarrier(
        PROFILES[code],
        labels if labels is not None else InMemoryLabelBook(),
        failure_rate=failure_rate,
        down=down,
        rng=random.Random(seed),
        sleep=no_sleep,
    )


def first_quote(sim: SimulatedCarrier) -> CarrierQuote:
    return sim.quote("NL", "DE", 3, MONDAY, date(2024, 6, 20))[0]


def test_simulated_carrier_satisfies_the_protocol() -> None:
    sim: Carrier = carrier()
    assert sim.code == "PARCELCO"


def test_quote_uses_the_rate_card() -> None:
    quotes = carrier("SWIFTPOST").quote("NL", "DE", 2, MONDAY, date(2024, 6, 12))
    assert {q.service for q in quotes} == {"standard", "express"}
    assert all(q.carrier == "SWIFTPOST" and q.currency == "EUR" for q in quotes)


def test_same_key_books_one_label() -> None:
    labels = InMemoryLabelBook()
    sim = carrier(labels=labels)
    q = first_quote(sim)
    first = sim.book(q, "ORD-1-WH1@PARCELCO")
    again = sim.book(q, "ORD-1-WH1@PARCELCO")
    assert first == again
    assert len(labels.all()) == 1
    assert first.price == q.price and first.service == q.service and first.carrier == "PARCELCO"
    other = sim.book(q, "ORD-2-WH1@PARCELCO")
    assert other.label_id != first.label_id
    assert other.tracking_number != first.tracking_number
    assert len(labels.all()) == 2


def test_same_key_after_restart_returns_the_stored_label() -> None:
    labels = InMemoryLabelBook()
    before = carrier(labels=labels, seed=1)
    label = before.book(first_quote(before), "K")
    after = carrier(labels=labels, seed=2)  # a new process, same carrier-side record
    assert after.book(first_quote(after), "K") == label
    assert len(labels.all()) == 1


def test_concurrent_bookings_with_one_key_yield_one_label() -> None:
    labels = InMemoryLabelBook()
    sim = carrier(labels=labels)
    q = first_quote(sim)
    results: list[Label] = []
    lock = threading.Lock()

    def book() -> None:
        label = sim.book(q, "RACE")
        with lock:
            results.append(label)

    threads = [threading.Thread(target=book) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.label_id for r in results}) == 1
    assert len(labels.all()) == 1


def test_down_carrier_raises_unavailable_on_every_call() -> None:
    slept: list[float] = []
    sim = SimulatedCarrier(
        PROFILES["GLOBEX"],
        InMemoryLabelBook(),
        down=True,
        latency_ms=(20, 80),
        rng=random.Random(3),
        sleep=slept.append,
    )
    healthy = carrier("GLOBEX")
    q = first_quote(healthy)
    calls: list[Callable[[], object]] = [
        lambda: sim.quote("NL", "DE", 1, MONDAY, MONDAY),
        lambda: sim.book(q, "K"),
        lambda: sim.void("whatever"),
        lambda: sim.track("GX00000000000"),
    ]
    for call in calls:
        with pytest.raises(CarrierUnavailable) as info:
            call()
        assert info.value.retryable is True
        assert isinstance(info.value, CarrierError)
    assert len(slept) == 4
    assert all(0.020 <= s <= 0.080 for s in slept)


def test_failure_rate_one_always_fails_zero_never() -> None:
    always = carrier(failure_rate=1.0)
    never = carrier(failure_rate=0.0)
    for i in range(200):
        with pytest.raises(CarrierUnavailable):
            always.quote("NL", "NL", 1, MONDAY, MONDAY)
        assert never.quote("NL", "NL", 1, MONDAY, MONDAY)
        never.book(first_quote(never), f"K{i}")


def test_failure_rate_is_roughly_honoured() -> None:
    sim = carrier(failure_rate=0.3, seed=42)
    failures = 0
    for _ in range(1000):
        try:
            sim.quote("NL", "NL", 1, MONDAY, MONDAY)
        except CarrierUnavailable:
            failures += 1
    assert 230 < failures < 370


def test_void_is_idempotent() -> None:
    labels = InMemoryLabelBook()
    sim = carrier(labels=labels)
    label = sim.book(first_quote(sim), "K")
    sim.void(label.label_id)
    sim.void(label.label_id)
    sim.void("unknown-label")
    [stored] = labels.all()
    assert stored.voided is True
    found = labels.find("K")
    assert found is not None and found.voided


def test_tracking_number_is_stable_and_carrier_shaped() -> None:
    a = carrier("PARCELCO", seed=1)
    b = carrier("PARCELCO", seed=99)
    assert a.tracking_number_for("K") == b.tracking_number_for("K")
    label = a.book(first_quote(a), "K")
    assert label.tracking_number == a.tracking_number_for("K")
    assert re.fullmatch(r"PC\d{10}", label.tracking_number)
    assert a.tracking_number_for("K") != a.tracking_number_for("L")
    globex = carrier("GLOBEX")
    assert re.fullmatch(r"GX\d{11}", globex.tracking_number_for("K"))
    assert globex.tracking_number_for("K") != label.tracking_number
    assert a.track(label.tracking_number) == "IN_TRANSIT"
    with pytest.raises(CarrierError) as info:
        a.track("XX123")
    assert info.value.retryable is False


def test_book_rejects_another_carriers_quote_or_unknown_service() -> None:
    parcelco = carrier("PARCELCO")
    globex_quote = first_quote(carrier("GLOBEX"))
    with pytest.raises(CarrierError) as info:
        parcelco.book(globex_quote, "K")
    assert info.value.retryable is False
    bogus = first_quote(parcelco).model_copy(update={"service": "teleport"})
    with pytest.raises(CarrierError):
        parcelco.book(bogus, "K2")


def test_key_already_used_by_another_carrier_is_refused() -> None:
    labels = InMemoryLabelBook()
    parcelco = carrier("PARCELCO", labels)
    swift = carrier("SWIFTPOST", labels)
    parcelco.book(first_quote(parcelco), "SHARED")
    with pytest.raises(CarrierError):
        swift.book(first_quote(swift), "SHARED")


def test_label_book_add_returns_existing_for_known_key() -> None:
    book = InMemoryLabelBook()
    first = Label(
        label_id="L1",
        carrier="C",
        service="s",
        tracking_number="T1",
        idempotency_key="K",
        price=Decimal("1.00"),
        currency="EUR",
    )
    second = first.model_copy(update={"label_id": "L2", "tracking_number": "T2"})
    assert book.add(first) == first
    assert book.add(second) == first
    assert book.find("K") == first
    assert book.find("nope") is None


def test_carriers_from_config() -> None:
    labels = InMemoryLabelBook()
    carriers = carriers_from_config(
        DEFAULT_CARRIERS, labels, down={"globex"}, failure_rate=0.0, latency_ms=(0, 0)
    )
    by_code = {c.code: c for c in carriers}
    assert set(by_code) == {"PARCELCO", "SWIFTPOST", "GLOBEX"}
    assert by_code["GLOBEX"].down and not by_code["PARCELCO"].down
    with pytest.raises(CarrierUnavailable):
        by_code["GLOBEX"].quote("NL", "NL", 1, MONDAY, MONDAY)
    assert by_code["PARCELCO"].quote("NL", "NL", 1, MONDAY, MONDAY)
    with pytest.raises(ValueError):
        carriers_from_config(DEFAULT_CARRIERS, labels, {"NOPE"}, 0.0, (0, 0))


def test_invalid_configuration_is_refused() -> None:
    profile: CarrierProfile = PROFILES["PARCELCO"]
    with pytest.raises(ValueError):
        SimulatedCarrier(profile, InMemoryLabelBook(), failure_rate=1.5)
    with pytest.raises(ValueError):
        SimulatedCarrier(profile, InMemoryLabelBook(), latency_ms=(80, 20))
