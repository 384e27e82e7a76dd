"""Purchase orders sent by e-mail: an RFC 5322 message (`.eml`) read into canonical orders.

Who orders: the From address, lowercased, through `config.customer_for` (its partner entry,
else the channel's account). An e-mail without a From, from an unknown sender, or holding no
purchase order is one error and nothing else.

Where the order is:

1. Attachments, when there are any of these (others, a PDF copy or a logo, are ignored):
   a CSV purchase order (text/csv, or a `.csv` name) read as the B2B portal's CSV, or an X12
   850 (application/edi-x12, or a `.edi`/`.x12` name) read as EDI. Every order is booked to
   the sender's account: a CSV row for another customer_id is an error (a customer may not
   order for another account), and an 850's ISA06 is not looked up. The external id is the
   attachment's own reference (`<customer_id>/<po_number>`, `<ISA06>/<BEG03>`), so the same
   PO sent in two e-mails names the same order. An attachment that cannot be decoded (broken
   base64, empty) is one error and nothing is placed.
2. Otherwise the plain-text body, written as a form: see `email_form`.

Errors: for the body, see `email_form`; for an attachment, its source is
`<source>/<file name>` and line and field are the attachment format's own.
"""

from datetime import datetime
from email import errors as email_errors
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

from domain.channels import email_form, portal_csv, x12
from domain.channels.records import ChannelBatch, ChannelConfig, RecordError

_BROKEN = (
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64LengthDefect,
)
_HEADER_TROUBLE = (ValueError, IndexError, TypeError, AttributeError, LookupError)
"""What the standard library's header parser is known to raise on malformed headers."""


def parse(
    payload: bytes, source: str, config: ChannelConfig, *, now: datetime | None = None
) -> ChannelBatch:
    """The orders of one e-mailed purchase order, or an error per problem; given `now`, the
    997 answering an attached 850 too."""
    message = message_from_bytes(payload, policy=policy.default)
    sender = _sender(message, source)
    if isinstance(sender, RecordError):
        return ChannelBatch(errors=[sender])
    customer = config.customer_for(sender)
    if customer is None:
        reason = f"{sender} is not a known ordering address of this channel"
        return ChannelBatch(errors=[_error(source, "From", reason)])
    attachments = _attachments(message, source)
    if isinstance(attachments, RecordError):
        return ChannelBatch(errors=[attachments])
    if attachments:
        return _from_attachments(attachments, sender, customer, source, config, now)
    return _from_body(message, sender, customer, source, config)


def _sender(message: Message, source: str) -> str | RecordError:
    """The From address, lowercased, or why there is none."""
    if not message.keys():
        return _error(source, "From", "not an e-mail: it has no headers (RFC 5322)")
    try:
        addresses = getattr(message.get("From"), "addresses", ())
        found = [address.addr_spec for address in addresses]
    except _HEADER_TROUBLE:
        found = []
    if len(found) != 1 or "@" not in found[0]:
        return _error(source, "From", "missing or not one e-mail address")
    return str(found[0]).strip().lower()


# Attachments


def _attachments(message: Message, source: str) -> list[tuple[str, str, bytes]] | RecordError:
    """The purchase-order attachments as (kind, file name, content), or the one that cannot
    be read."""
    found = []
    for part in message.walk():
        kind = None if part.is_multipart() else _kind(part)
        if kind is None:
            continue
        name = part.get_filename() or f"attachment.{kind}"
        content = part.get_payload(decode=True)
        broken = [defect for defect in part.defects if isinstance(defect, _BROKEN)]
        if broken or not isinstance(content, bytes) or not content.strip():
            why = "its base64 is broken" if broken else "it is empty"
            reason = f"cannot be read ({why}): send the purchase order again"
            return _error(source, f"attachment {name}", reason)
        found.append((kind, name, content))
    return found


def _kind(part: Message) -> str | None:
    """ "csv" or "x12" for a purchase-order attachment, else None."""
    name = (part.get_filename() or "").lower()
    content_type = part.get_content_type()
    if content_type == "text/csv" or name.endswith(".csv"):
        return "csv"
    if content_type == "application/edi-x12" or name.endswith((".edi", ".x12")):
        return "x12"
    return None


def _from_attachments(
    attachments: list[tuple[str, str, bytes]],
    sender: str,
    customer: str,
    source: str,
    config: ChannelConfig,
    now: datetime | None,
) -> ChannelBatch:
    """Every attachment's orders, each booked to the sender's account."""
    batch = ChannelBatch()
    acknowledgements = []
    for kind, name, content in attachments:
        where = f"{source}/{name}"
        if kind == "x12":
            booked = config.model_copy(update={"customer_id": customer, "partners": {}})
            found = x12.parse(content, where, booked, now=now)
            acknowledgements.append(found.acknowledgement or "")
        else:
            # Any customer_id is read; the sender's own is the only one placed (below).
            anyone = config.model_copy(update={"customer_id": None, "partners": {}})
            found = portal_csv.parse(content, where, anyone)
        batch.errors.extend(found.errors)
        for item in found.orders:
            if item.order.customer_id == customer:
                batch.orders.append(item)
                continue
            reason = (
                f"{item.order.customer_id} is not the account of {sender} ({customer}): "
                "a customer may not order for another account"
            )
            batch.errors.append(
                RecordError(
                    source=where,
                    line=item.line,
                    record=item.external_id,
                    field="customer_id",
                    reason=reason,
                )
            )
    batch.acknowledgement = "".join(acknowledgements) or None
    return batch


# The body form


def _from_body(
    message: Message, sender: str, customer: str, source: str, config: ChannelConfig
) -> ChannelBatch:
    """The order written in the plain-text body."""
    text = _plain_body(message)
    if text is None or not email_form.has_form(text):
        reason = (
            "no purchase order found: attach a CSV or X12 850, or write the order in the "
            "plain-text body as a form starting with 'PO:'"
        )
        return ChannelBatch(errors=[_error(source, "e-mail", reason)])
    return email_form.read_form(text, _message_id(message), sender, customer, source, config)


def _plain_body(message: Message) -> str | None:
    if not isinstance(message, EmailMessage):
        return None
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset
        return None
    return content if isinstance(content, str) else None


def _message_id(message: Message) -> str:
    try:
        value = str(message.get("Message-ID") or "")
    except _HEADER_TROUBLE:
        return ""
    return value.strip().strip("<>").strip()


def _error(source: str, name: str, reason: str) -> RecordError:
    return RecordError(source=source, field=name, reason=reason)
