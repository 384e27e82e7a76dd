"""Approvers as the inbox knows them: tiers, sign-in tokens, e-mail, used links."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.db.models import Approver, ApproverAccount, UsedLink
from domain.holds import Tier
from domain.links import hash_secret, same_secret


class UnknownApprover(Exception):
    """No active approver with that user id."""


@dataclass(frozen=True)
class ApproverView:
    user_id: str
    name: str
    tiers: tuple[Tier, ...]

    def may_release(self, needed: Tier) -> bool:
        return any(tier.may_release(needed) for tier in self.tiers)


def approver(engine: Engine, user_id: str) -> ApproverView | None:
    """The active approver `user_id`, with every tier they hold; None if there is none."""
    with Session(engine) as session:
        rows = session.scalars(
            select(Approver).where(Approver.user_id == user_id, Approver.active.is_(True))
        ).all()
    known = {tier.value for tier in Tier}
    tiers = tuple(sorted((Tier(r.tier) for r in rows if r.tier in known), key=lambda t: t.rank))
    if not tiers:
        return None
    return ApproverView(user_id=user_id, name=rows[0].name, tiers=tiers)


def issue_token(engine: Engine, user_id: str, email: str | None) -> str:
    """A new sign-in token for an active approver (the old one stops working); the token is
    shown once and only its hash is kept. `email` (if given) is where notices are mailed."""
    if approver(engine, user_id) is None:
        raise UnknownApprover(f"no active approver {user_id!r} (see `orderflow seed`)")
    token = secrets.token_urlsafe(32)
    with Session(engine) as session, session.begin():
        account = session.get(ApproverAccount, user_id) or ApproverAccount(user_id=user_id)
        account.token_hash = hash_secret(token)
        account.token_issued_at = datetime.now(UTC)
        if email is not None:
            account.email = email
        session.add(account)
    return token


def check_token(engine: Engine, user_id: str, token: str) -> ApproverView | None:
    """The approver when `token` is their current sign-in token, else None."""
    with Session(engine) as session:
        account = session.get(ApproverAccount, user_id)
        stored = account.token_hash if account is not None else None
    if not same_secret(token, stored):
        return None
    return approver(engine, user_id)


def use_link(engine: Engine, link_id: str, order_id: str, user_id: str, action: str) -> bool:
    """Mark an e-mailed link used; False when it was used before (a link works once)."""
    try:
        with Session(engine) as session, session.begin():
            if session.get(UsedLink, link_id) is not None:
                return False
            session.add(
                UsedLink(link_id=link_id, order_id=order_id, user_id=user_id, action=action)
            )
    except IntegrityError:
        return False  # used at the same moment by another request
    return True


def link_used(engine: Engine, link_id: str) -> UsedLink | None:
    with Session(engine) as session:
        return session.get(UsedLink, link_id)
