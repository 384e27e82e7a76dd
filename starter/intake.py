"""The intake desk: a channel's orders become workflows once, whatever is sent twice.

Shared by the HTTP intake (`POST /orders`, `POST /channels/{name}`) and `orderflow import`.
A channel's reference (its own order id, or a client's Idempotency-Key) is claimed in the
database before the workflow starts, so the same reference always answers with the same
order: sent again with the same content it is a replay (the order as it is, nothing started);
with other content it is a conflict. A crash between the claim and the start is healed by the
next replay (the claimed order is started then), and a replay that heals while the claimer is
still starting finds the same workflow (starts use USE_EXISTING once a reference is claimed).
An order id already taken outside the channel is refused before anything is claimed. A
suspected duplicate (same customer and content under a new reference) is placed and held for a
person by the workflow; the desk only names it so the sender hears it at once.
"""

import asyncio
import hashlib
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.db.models import ChannelReference
from activities.intake import earlier_copy
from domain.channels.records import ChannelOrder
from domain.order import Order
from starter import orders
from starter.orders import UserError
from starter.read_model import known_orders
from workers.settings import Settings
from workflows import search

Outcome = Literal["placed", "replayed", "conflict"]
EXTERNAL_ID = "external_id"
IDEMPOTENCY_KEY = "idempotency_key"


class Placement(BaseModel):
    """What became of one order a channel sent."""

    outcome: Outcome
    order_id: str
    channel: str
    external_id: str
    detail: str
    duplicate_of: str | None = None
    """placed, and looks like this earlier order: held for review (a DUPLICATE hold)"""


class Claim(BaseModel):
    """The references one order is sent under, and what they are bound to."""

    channel: str
    order_id: str
    references: list[tuple[str, str, str]]  # (kind, reference, content fingerprint)


class IntakeDesk:
    """Places channel orders exactly once; built per process with Temporal and the database."""

    def __init__(self, client: Client, settings: Settings, engine: Engine) -> None:
        self._client = client
        self._settings = settings
        self._engine = engine

    async def submit(
        self, item: ChannelOrder, idempotency_key: str | None = None, request: bytes = b""
    ) -> Placement:
        """Place one order, or answer with the order its reference already names.

        Args:
            item: the order as the channel's adapter read it.
            idempotency_key: the client's Idempotency-Key header, if it sent one.
            request: the raw request the key covers (a key reused for another request is a
                conflict).
        """
        order = item.order
        references = [(EXTERNAL_ID, item.external_id, content_of(order))]
        if idempotency_key:
            references.append((IDEMPOTENCY_KEY, idempotency_key, _sha(request)))
        claim = Claim(channel=item.channel, order_id=order.order_id, references=references)
        bound = await asyncio.to_thread(bound_reference, self._engine, claim)
        if bound is None and await self._exists(order.order_id):
            # Claimed and started by a delivery of the same order since we looked (its claim
            # commits before its start, so a second look sees it): a replay. Else the id is
            # taken outside this channel (placed by hand, say): claim nothing.
            bound = await asyncio.to_thread(bound_reference, self._engine, claim)
            if bound is None:
                why = f"order {order.order_id} already exists; order ids are used once"
                return _placement(item, "conflict", why)
        if bound is None:
            bound = await asyncio.to_thread(claim_references, self._engine, claim)
        if bound is not None:
            return await self._replay(item, bound)
        suspect = await asyncio.to_thread(
            duplicate_suspect, self._engine, order, self._settings.duplicate_window
        )
        # Claimed: the order is ours. A replay arriving meanwhile may have started it already
        # (healing what looked like a crash): the same workflow either way.
        await orders.place(self._client, self._settings, order, existing_ok=True)
        detail = "placed"
        if suspect:
            detail = f"placed; held for review as a possible duplicate of order {suspect}"
        return _placement(item, "placed", detail, duplicate_of=suspect)

    async def _replay(self, item: ChannelOrder, bound: "Bound") -> Placement:
        if bound.conflict:
            return _placement(item, "conflict", bound.conflict, order_id=bound.order_id)
        if bound.order_id == item.order.order_id and not await self._exists(bound.order_id):
            # Claimed, then the claimer died before the start (or is starting it right now):
            # start it; whoever comes second finds the same workflow.
            await orders.place(self._client, self._settings, item.order, existing_ok=True)
        return _placement(
            item, "replayed", f"already received as order {bound.order_id}", bound.order_id
        )

    async def _exists(self, order_id: str) -> bool:
        if await asyncio.to_thread(known_orders, self._engine, [order_id]):
            return True
        try:
            await self._client.get_workflow_handle(search.workflow_id(order_id)).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True


class Bound(BaseModel):
    """A reference that was already claimed: its order, or why this request conflicts."""

    order_id: str
    conflict: str | None = None


def bound_reference(engine: Engine, claim: Claim) -> Bound | None:
    """The binding of a reference already claimed (read only); None when all are new."""
    with Session(engine) as session:
        return _bound(session, claim)


def claim_references(engine: Engine, claim: Claim) -> Bound | None:
    """Bind the references to the order in one transaction; None when all were new.

    Two requests with the same reference at once: one inserts, the other's insert fails on
    the primary key and it reads the winner's binding instead.
    """
    for _ in range(2):
        with Session(engine) as session:
            bound = _bound(session, claim)
            if bound is not None:
                return bound
            session.add_all(
                ChannelReference(
                    channel=claim.channel,
                    kind=kind,
                    reference=reference,
                    order_id=claim.order_id,
                    fingerprint=content,
                )
                for kind, reference, content in claim.references
            )
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
    raise UserError(f"reference of order {claim.order_id} is being claimed concurrently; retry")


def _bound(session: Session, claim: Claim) -> Bound | None:
    """The first reference already claimed, checked against this request."""
    for kind, reference, content in claim.references:
        row = session.get(ChannelReference, (claim.channel, kind, reference))
        if row is None:
            continue
        if kind == IDEMPOTENCY_KEY and row.fingerprint != content:
            why = (
                f"Idempotency-Key {reference!r} was used for another request (order {row.order_id})"
            )
            return Bound(order_id=row.order_id, conflict=why)
        if kind == EXTERNAL_ID and row.fingerprint != content:
            why = (
                f"{claim.channel} reference {reference!r} was received as order {row.order_id} "
                "with other content; change the order instead (orderflow edit) or send a new one"
            )
            return Bound(order_id=row.order_id, conflict=why)
        return Bound(order_id=row.order_id)
    return None


def duplicate_suspect(engine: Engine, order: Order, window: timedelta) -> str | None:
    """An earlier order with this one's content, if any (the workflow will hold it)."""
    with Session(engine) as session:
        return earlier_copy(session, order, window)


def content_of(order: Order) -> str:
    """The fingerprint of everything the order says (a replay must say the same)."""
    return _sha(order.model_dump_json().encode())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _placement(
    item: ChannelOrder,
    outcome: Outcome,
    detail: str,
    order_id: str | None = None,
    duplicate_of: str | None = None,
) -> Placement:
    return Placement(
        outcome=outcome,
        order_id=order_id or item.order.order_id,
        channel=item.channel,
        external_id=item.external_id,
        detail=detail,
        duplicate_of=duplicate_of,
    )
