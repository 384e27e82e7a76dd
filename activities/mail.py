"""E-mail: who a notice goes to, what it says, and the outbox that delivers it over SMTP.

`notify` (activities/approvals.py) and the customer notices (activities/customer_notices.py)
write a notification and its e-mails in one transaction; the worker's mail loop
(`deliver_pending`) sends what is unsent. Each row is claimed just before it is sent (so two
workers never send the same e-mail at once) and marked sent right after. A worker that dies
before the SMTP server accepted the message leaves a claim that lapses (`MailConfig.claim`),
and the next worker sends it: once. One that dies after the server's "250 OK" and before
`sent_at` is written has it sent again: delivery is at least once, never silently lost, and
the copy carries the same Message-ID (derived from the e-mail's idempotency key), so it is
recognisably the same message.
"""

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import ColumnElement, Engine, or_, select, update
from sqlalchemy.orm import Session

from activities.db.models import Approver, ApproverAccount, OutboxEmail, aware
from domain.holds import Notice, Tier
from domain.links import claim_for, sign

log = logging.getLogger(__name__)

APPROVAL_KINDS = frozenset({"approval_needed", "escalated"})
"""Notices an approver can act on: their e-mail carries a one-time approve/reject link."""

CLAIM = timedelta(seconds=60)
"""How long a worker may take to send one e-mail before another may (ORDERFLOW_MAIL_CLAIM)."""


@dataclass(frozen=True)
class MailConfig:
    """What e-mail needs from the settings (built by the worker, `workers.settings`)."""

    smtp_host: str | None
    smtp_port: int
    smtp_security: str  # none, starttls, ssl
    smtp_user: str | None
    smtp_password: str | None
    mail_from: str
    operations_email: str | None
    inbox_url: str
    link_valid_for: timedelta
    secret: bytes
    claim: timedelta = CLAIM


@dataclass(frozen=True)
class Recipient:
    address: str
    user_id: str | None = None  # an approver (gets a personal link), else a team mailbox


class Mailer:
    """SMTP with the configured host, port, security and login."""

    def __init__(self, config: MailConfig) -> None:
        if not config.smtp_host:
            raise ValueError("no SMTP host configured (ORDERFLOW_SMTP_HOST)")
        self._config = config

    def connect(self) -> smtplib.SMTP:
        c = self._config
        assert c.smtp_host is not None
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if c.smtp_security == "ssl":
            smtp = smtplib.SMTP_SSL(c.smtp_host, c.smtp_port, timeout=20, context=context)
        else:
            smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=20)
        if c.smtp_security == "starttls":
            smtp.starttls(context=context)
        if c.smtp_user:
            smtp.login(c.smtp_user, c.smtp_password or "")
        return smtp


def recipients(session: Session, config: MailConfig, recipient: str) -> list[Recipient]:
    """Addresses for a tier (its active approvers), `operations`, or one approver's user id."""
    if recipient == "operations":
        return [Recipient(config.operations_email)] if config.operations_email else []
    tiers = {tier.value for tier in Tier}
    query = (
        select(ApproverAccount.user_id, ApproverAccount.email)
        .join(Approver, Approver.user_id == ApproverAccount.user_id)
        .where(Approver.active.is_(True), ApproverAccount.email.is_not(None))
    )
    if recipient in tiers:
        query = query.where(Approver.tier == recipient)
    else:
        query = query.where(Approver.user_id == recipient)
    found = {user: address for user, address in session.execute(query) if address}
    return [Recipient(address, user) for user, address in sorted(found.items())]


def compose(config: MailConfig, notice: Notice, to: Recipient, now: datetime) -> OutboxEmail:
    """The e-mail for one notice and one reader; approvers get a signed one-time link."""
    lines = [notice.message, ""]
    if to.user_id and notice.kind in APPROVAL_KINDS:
        claim = claim_for("link", to.user_id, now, config.link_valid_for, order=notice.order_id)
        token = sign(config.secret, claim)
        lines += [
            "Approve or reject it here (this link works once, for you only, until "
            f"{claim.expires:%Y-%m-%d %H:%M} UTC):",
            f"{config.inbox_url}/link/{token}",
            "",
            f"Everything waiting for you: {config.inbox_url}/",
        ]
    else:
        lines.append(f"The order in the inbox: {config.inbox_url}/orders/{notice.order_id}")
    subject = {
        "approval_needed": f"Order {notice.order_id} needs your approval",
        "escalated": f"Escalated: order {notice.order_id} waited too long for approval",
        "sla_breach": f"SLA breached: order {notice.order_id}",
        "auto_rejected": f"Order {notice.order_id} was rejected: approval expired",
        "exception": f"Order {notice.order_id} needs a person",
        "order_failed": f"Order {notice.order_id} failed",
    }.get(notice.kind, f"Order {notice.order_id}: {notice.kind}")
    return OutboxEmail(
        idempotency_key=f"{notice.key}/{to.address}"[:240],
        notification_key=notice.key,
        order_id=notice.order_id,
        to_address=to.address,
        subject=subject,
        body="\n".join(lines) + "\n",
    )


def message_of(config: MailConfig, row: OutboxEmail) -> EmailMessage:
    """The e-mail as sent; sending it again gives the same Message-ID and Date."""
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(aware(row.created_at or datetime.now(UTC)))
    message["Message-ID"] = message_id(row.idempotency_key)
    message.set_content(row.body)
    return message


def message_id(idempotency_key: str) -> str:
    """A valid Message-ID from an e-mail's idempotency key: stable, so a copy sent again after
    a crash is recognisably the same message (and mail clients show it once)."""
    left = re.sub(r"\.+", ".", re.sub(r"[^A-Za-z0-9!#$%&'*+=?^_`{|}~-]", ".", idempotency_key))
    return f"<{left.strip('.')[:200] or 'notice'}@orderflow>"


def deliver_pending(engine: Engine, config: MailConfig, mailer: Mailer, limit: int = 50) -> int:
    """Send unsent e-mails, each claimed just before it is sent and marked sent right after;
    the number sent.

    Claiming one row at a time keeps a claim as short as one send: a batch waiting behind a
    slow server never outlives its claims (which would let another worker send it too).
    An address the server refuses for good (5xx) is recorded on its e-mail (`refused`) and
    not tried again, so one bad address never holds up the others. Any other SMTP failure
    releases the claim of the e-mail being sent and propagates (the mail loop logs it and
    tries again on its next round).
    """
    due = _due(engine, limit)
    if not due:
        return 0
    sent = 0
    with mailer.connect() as smtp:
        for email_id in due:
            row = _claim(engine, email_id, config.claim)
            if row is None:
                continue  # another worker has it (or sent it meanwhile)
            try:
                smtp.send_message(message_of(config, row))
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                if not _permanent(error):
                    _mark(engine, [row.id], sent_at=None)
                    raise
                _refuse(engine, row.id, _reason(error))
                log.warning("not mailed to %s: %s", row.to_address, _reason(error))
                continue
            except BaseException:
                _mark(engine, [row.id], sent_at=None)
                raise
            _mark(engine, [row.id], sent_at=datetime.now(UTC))
            sent += 1
            log.info("mailed %s: %s", row.to_address, row.subject)
    return sent


def _permanent(error: smtplib.SMTPException) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


def _reason(error: smtplib.SMTPException) -> str:
    text: bytes | str
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()))
    else:
        assert isinstance(error, smtplib.SMTPResponseException)
        code, text = error.smtp_code, error.smtp_error
    message = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {message}"[:300]


def _refuse(engine: Engine, email_id: int, reason: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == email_id)
            .values(refused=reason, claimed_until=None)
        )


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until < now)


def _due(engine: Engine, limit: int) -> list[int]:
    """Unsent e-mails nobody is sending, oldest first."""
    with Session(engine) as session:
        return list(
            session.scalars(
                select(OutboxEmail.id)
                .where(
                    OutboxEmail.sent_at.is_(None),
                    OutboxEmail.refused.is_(None),
                    _free(datetime.now(UTC)),
                )
                .order_by(OutboxEmail.id)
                .limit(limit)
            )
        )


def _claim(engine: Engine, email_id: int, claim: timedelta) -> OutboxEmail | None:
    """Take one e-mail for `claim`, unless it was sent, refused or taken meanwhile."""
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        taken = session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email_id,
                OutboxEmail.sent_at.is_(None),
                OutboxEmail.refused.is_(None),
                _free(now),
            )
            .values(claimed_until=now + claim)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(OutboxEmail, email_id)


def _mark(engine: Engine, ids: list[int], sent_at: datetime | None) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id.in_(ids))
            .values(sent_at=sent_at, claimed_until=None)
        )
