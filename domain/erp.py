"""ERP handoff rules, pure: posting kinds and keys, the webhook signature, backoff, reconciling.

A posting is one business document the ERP must book (an invoice, a credit note, a card
refund, a cancelled authorisation), written to the outbox in the same transaction as the
document itself and delivered later, in order per order, under an idempotency key.
"""

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

PostingKind = Literal["invoice", "credit_note", "refund", "cancellation"]
PostingState = Literal["pending", "delivered", "dead"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Orderflow-Signature"
TIMESTAMP_HEADER = "X-Orderflow-Timestamp"
SIGNATURE_TOLERANCE_SECONDS = 300
"""A signed request older (or newer) than this is refused: a captured request cannot be
replayed later."""


def posting_key(order_id: str, kind: str, document: str) -> str:
    """The idempotency key the ERP deduplicates on: one per order, kind and document."""
    return f"{order_id}:{kind}:{document}"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>`: the HMAC-SHA256 of `<timestamp>.<body>` under the shared secret.

    The timestamp is signed with the body so that a recorded request goes stale.
    """
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signature_problem(
    secret: bytes, timestamp: str | None, given: str | None, body: bytes, now: float
) -> str | None:
    """Why a signed request is not to be trusted, or None when it is."""
    if not timestamp or not given:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}"
    try:
        at = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not a Unix time"
    if abs(now - at) > SIGNATURE_TOLERANCE_SECONDS:
        return f"{TIMESTAMP_HEADER} is more than {SIGNATURE_TOLERANCE_SECONDS} s off"
    if not hmac.compare_digest(given.strip(), signature(secret, at, body)):
        return "wrong signature"
    return None


def backoff(attempts: int, first: timedelta, cap: timedelta) -> timedelta:
    """Wait before the next try after `attempts` failed ones: doubling from `first`, capped."""
    if attempts <= 0:
        return timedelta(0)
    factor: int = 2 ** min(attempts - 1, 30)
    return min(first * factor, cap)


class DeliveryRequest(BaseModel):
    """One round of the dispatcher: deliver what is due for up to `max_seconds`."""

    max_seconds: float = 30.0
    outage_failures: int = 0
    """Consecutive tries that found the ERP unreachable, carried from the previous round."""
    dead_seen: list[int] = Field(default_factory=list)
    """The dead letters the dispatcher shows now: the round returns early when they change."""


class DeadLetter(BaseModel):
    """A posting the ERP refused: it waits for a person (`orderflow erp retry ID`)."""

    id: int
    order_id: str
    kind: str
    document: str
    attempts: int
    reason: str


class DeliveryReport(BaseModel):
    """What a round did, and how the outbox stands at its end."""

    erp: str = ""
    """Where the postings go (the worker's ORDERFLOW_ERP_URL)."""
    delivered: int = 0
    failed: int = 0
    """Tries that will be repeated (the ERP was unreachable or answered 5xx)."""
    refused: int = 0
    """Postings that went dead in this round."""
    pending: int = 0
    outage_failures: int = 0
    last_error: str | None = None
    dead_letters: list[DeadLetter] = Field(default_factory=list)
    stopped: str | None = None
    """Why the round ended before its time: "dead letters changed", "worker shutdown"."""


class DispatcherInput(BaseModel):
    """The ERP dispatcher's run: how it paces its rounds, and what the previous run knew."""

    round_seconds: float = 30.0
    rounds_per_run: int = 200
    last: DeliveryReport = Field(default_factory=DeliveryReport)


Problem = Literal[
    "missing_in_erp",
    "not_posted",
    "pending",
    "dead",
    "amount_differs",
    "currency_differs",
    "unknown_to_orderflow",
]


class Document(BaseModel):
    """A document in orderflow's books, with the state of its posting (None: no posting)."""

    key: str
    order_id: str
    kind: str
    document: str
    amount: Decimal
    currency: str
    state: PostingState | None = None
    last_error: str | None = None


class Acknowledged(BaseModel):
    """A posting as the ERP acknowledged it."""

    key: str
    order_id: str = ""
    kind: str = ""
    document: str = ""
    amount: Decimal
    currency: str
    ack: str = ""


class Difference(BaseModel):
    """One thing orderflow and the ERP do not agree on."""

    key: str
    order_id: str
    kind: str
    document: str
    problem: Problem
    detail: str


def reconcile(documents: list[Document], acknowledged: list[Acknowledged]) -> list[Difference]:
    """Every difference between orderflow's documents and the ERP's acknowledged postings.

    A document is in agreement when the ERP acknowledged its key with the same amount and
    currency. One that is not acknowledged is `pending` or `dead` (its posting waits or was
    refused), `not_posted` (no posting: written before the outbox existed) or `missing_in_erp`
    (orderflow holds it delivered, the ERP does not know it). The ERP's postings no document
    of orderflow's explains are `unknown_to_orderflow`.
    """
    erp = {a.key: a for a in acknowledged}
    ours = {d.key for d in documents}
    out: list[Difference] = []
    for d in sorted(documents, key=lambda d: (d.order_id, d.key)):
        problem = _problem(d, erp.get(d.key))
        if problem is not None:
            out.append(
                Difference(**d.model_dump(include=_IDENTITY), problem=problem[0], detail=problem[1])
            )
    for a in sorted(acknowledged, key=lambda a: (a.order_id, a.key)):
        if a.key not in ours:
            out.append(
                Difference(
                    key=a.key,
                    order_id=a.order_id,
                    kind=a.kind,
                    document=a.document,
                    problem="unknown_to_orderflow",
                    detail=f"the ERP booked {a.amount} {a.currency} (ack {a.ack or '?'})",
                )
            )
    return out


_IDENTITY = {"key", "order_id", "kind", "document"}


def _problem(d: Document, ack: Acknowledged | None) -> tuple[Problem, str] | None:
    if ack is None:
        if d.state is None:
            return "not_posted", "no posting in the outbox (issued before the ERP handoff)"
        if d.state == "pending":
            return "pending", f"not delivered yet{_because(d.last_error)}"
        if d.state == "dead":
            return "dead", f"refused by the ERP{_because(d.last_error)}"
        return "missing_in_erp", "delivered and acknowledged once, unknown to the ERP now"
    if ack.currency != d.currency:
        return "currency_differs", f"orderflow {d.currency}, ERP {ack.currency}"
    if ack.amount != d.amount:
        return "amount_differs", f"orderflow {d.amount} {d.currency}, ERP {ack.amount}"
    return None


def _because(error: str | None) -> str:
    return f": {error}" if error else ""
