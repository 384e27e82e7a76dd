"""Carrier adapters behind one interface, and simulated carriers that behave like real ones."""

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel

from domain.fulfilment import CarrierQuote
from domain.shipping import CarrierProfile, quote_from_card


class CarrierError(Exception):
    """A carrier refused or failed a request; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class CarrierUnavailable(CarrierError):
    """The carrier is down or timed out: transient, worth retrying (or falling back)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class Label(BaseModel):
    """A shipping label as the carrier issued it."""

    label_id: str
    carrier: str
    service: str
    tracking_number: str
    idempotency_key: str
    price: Decimal
    currency: str
    voided: bool = False


class LabelBook(Protocol):
    """The carrier's own persistent record of labels, so booking is idempotent across restarts."""

    def find(self, idempotency_key: str) -> Label | None:
        """The label booked under this key, if any."""
        ...

    def add(self, label: Label) -> Label:
        """Store the label; if its key is already stored, return the stored one instead."""
        ...

    def mark_voided(self, label_id: str) -> None:
        """Flag the label voided; unknown or already voided labels are left alone."""
        ...


class InMemoryLabelBook:
    """A thread-safe LabelBook in a dict, for unit tests (forgets everything on restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Label] = {}
        self._key_by_id: dict[str, str] = {}

    def find(self, idempotency_key: str) -> Label | None:
        with self._lock:
            label = self._by_key.get(idempotency_key)
            return label.model_copy() if label else None

    def add(self, label: Label) -> Label:
        with self._lock:
            existing = self._by_key.get(label.idempotency_key)
            if existing is not None:
                return existing.model_copy()
            if label.label_id in self._key_by_id:
                raise ValueError(f"label id {label.label_id} already stored under another key")
            stored = label.model_copy()
            self._by_key[label.idempotency_key] = stored
            self._key_by_id[label.label_id] = label.idempotency_key
            return stored.model_copy()

    def mark_voided(self, label_id: str) -> None:
        with self._lock:
            key = self._key_by_id.get(label_id)
            if key is not None:
                self._by_key[key] = self._by_key[key].model_copy(update={"voided": True})

    def all(self) -> list[Label]:
        """Every stored label, in booking order."""
        with self._lock:
            return [label.model_copy() for label in self._by_key.values()]


class Carrier(Protocol):
    """What the shipping activities need from any carrier integration."""

    code: str

    def quote(
        self,
        origin_country: str,
        destination_country: str,
        units: int,
        ship_date: date,
        promised_by: date,
    ) -> list[CarrierQuote]:
        """Offers for one shipment, one per service into its zone (may be empty)."""
        ...

    def book(self, quote: CarrierQuote, idempotency_key: str) -> Label:
        """Buy a label for a quote; the same key returns the same label, never a second one."""
        ...

    def void(self, label_id: str) -> None:
        """Cancel a label; voiding twice is harmless."""
        ...

    def label_for(self, idempotency_key: str) -> Label | None:
        """The label booked under this key, if any (carriers look bookings up by key)."""
        ...

    def track(self, tracking_number: str) -> str:
        """The carrier's status of a parcel."""
        ...


class SimulatedCarrier:
    """A carrier API driven by a rate card, with network latency, outages and random timeouts.

    Every call first spends a random latency within `latency_ms`; then a `down` carrier raises
    CarrierUnavailable, and otherwise the call times out (CarrierUnavailable) with probability
    `failure_rate`. Labels live in `labels`, so booking is idempotent across process restarts.
    """

    def __init__(
        self,
        profile: CarrierProfile,
        labels: LabelBook,
        *,
        latency_ms: tuple[int, int] = (20, 80),
        failure_rate: float = 0.0,
        down: bool = False,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        low, high = latency_ms
        if not 0 <= low <= high:
            raise ValueError(f"latency_ms must be 0 <= low <= high, got {latency_ms}")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within [0, 1], got {failure_rate}")
        self.code = profile.code
        self.profile = profile
        self.down = down
        self._labels = labels
        self._latency = latency_ms
        self._failure_rate = failure_rate
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        self._prefix = profile.tracking_prefix or profile.code[:2].upper()
        self._tracking_pattern = re.compile(
            rf"{re.escape(self._prefix)}\d{{{profile.tracking_digits}}}"
        )

    def quote(
        self,
        origin_country: str,
        destination_country: str,
        units: int,
        ship_date: date,
        promised_by: date,
    ) -> list[CarrierQuote]:
        self._network("quote")
        return quote_from_card(
            self.profile, origin_country, destination_country, units, ship_date, promised_by
        )

    def book(self, quote: CarrierQuote, idempotency_key: str) -> Label:
        if quote.carrier != self.code:
            raise CarrierError(f"{self.code} cannot book a {quote.carrier} quote")
        self._network("book")
        refused = self._refusal(quote)
        # A key booked before gets its label back (even for a quote refused now); a new key
        # is stored in one step that also tells whether another booking got there first.
        label = (
            self._labels.find(idempotency_key)
            if refused
            else self._labels.add(self._new_label(quote, idempotency_key))
        )
        if label is None:
            raise CarrierError(refused)
        if label.carrier != self.code:
            raise CarrierError(
                f"idempotency key {idempotency_key!r} already used for a {label.carrier} label"
            )
        return label

    def _refusal(self, quote: CarrierQuote) -> str:
        """Why this carrier would not book `quote` ("" when it would)."""
        if quote.service not in self.profile.services:
            return f"{self.code} has no service {quote.service!r}"
        if quote.currency != self.profile.currency:
            return f"{self.code} bills in {self.profile.currency}, not {quote.currency}"
        return ""

    def _new_label(self, quote: CarrierQuote, idempotency_key: str) -> Label:
        digest = self._digest(idempotency_key)
        return Label(
            label_id=f"{self.code}-LBL-{digest[:24]}",
            carrier=self.code,
            service=quote.service,
            tracking_number=self.tracking_number_for(idempotency_key),
            idempotency_key=idempotency_key,
            price=quote.price,
            currency=quote.currency,
        )

    def void(self, label_id: str) -> None:
        self._network("void")
        self._labels.mark_voided(label_id)

    def label_for(self, idempotency_key: str) -> Label | None:
        self._network("lookup")
        label = self._labels.find(idempotency_key)
        return label if label is not None and label.carrier == self.code else None

    def track(self, tracking_number: str) -> str:
        self._network("track")
        if not self._tracking_pattern.fullmatch(tracking_number):
            raise CarrierError(f"{self.code} does not know tracking number {tracking_number!r}")
        return "IN_TRANSIT"

    def tracking_number_for(self, idempotency_key: str) -> str:
        """The tracking number a booking under this key gets: same key, same number."""
        digits = self.profile.tracking_digits
        number = int(self._digest(idempotency_key), 16) % 10**digits
        return f"{self._prefix}{number:0{digits}d}"

    def _digest(self, idempotency_key: str) -> str:
        return hashlib.sha256(f"{self.code}:{idempotency_key}".encode()).hexdigest()

    def _network(self, operation: str) -> None:
        """Spend the round trip, then fail the way a real API does when it is down or flaky."""
        with self._rng_lock:
            latency = self._rng.uniform(*self._latency)
            unlucky = self._rng.random() < self._failure_rate
        self._sleep(latency / 1000)
        if self.down:
            raise CarrierUnavailable(f"{self.code} is down ({operation}: 503 Service Unavailable)")
        if unlucky:
            raise CarrierUnavailable(f"{self.code} timed out ({operation})")


def carriers_from_config(
    profiles: list[CarrierProfile],
    labels: LabelBook,
    down: set[str],
    failure_rate: float,
    latency_ms: tuple[int, int],
) -> list[SimulatedCarrier]:
    """One simulated carrier per profile; `down` names (case-insensitive) the ones in an outage.

    Raises:
        ValueError: when `down` names a carrier that is not among the profiles (a typo in the
            configuration would otherwise silently leave every carrier up).
    """
    wanted_down = {code.strip().upper() for code in down}
    unknown = wanted_down - {profile.code.upper() for profile in profiles}
    if unknown:
        raise ValueError(f"unknown carrier codes in down list: {', '.join(sorted(unknown))}")
    return [
        SimulatedCarrier(
            profile,
            labels,
            latency_ms=latency_ms,
            failure_rate=failure_rate,
            down=profile.code.upper() in wanted_down,
        )
        for profile in profiles
    ]
