"""E-mailed purchase orders: a form in the body, an X12 850 or a CSV attached; the sender's
account books them; everything else is a clear error and nothing placed."""

import json
import random
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from domain.channels import email_order
from domain.channels.records import ChannelBatch, ChannelConfig, ChannelOrder, order_id_for
from domain.order import parse_order
from domain.statuses import Channel

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "channels"
SAMPLES = Path(__file__).parent / "channel_samples"
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
MAIL = ChannelConfig(
    name="mail",
    format="email",
    order_channel=Channel.EMAIL,
    currency="EUR",
    promised_days=7,
    partners={
        "purchasing@acme.example": "C-ACME",
        "orders@small-office.example": "C-SMALL",
    },
)
FORM = """Hello,

PO: 4711
Deliver by: 2027-01-20
Ship to: ACME Industrial BV, Receiving
Street: Hafenstrasse 12
City: Frankfurt am Main
Postal code: 60327
Country: DE
Lines:
KB-100 x 10 @ 45.00
MN-27 x 2 @ 229.00

Kind regards
"""


def read(path: Path, config: ChannelConfig = MAIL, **kwargs: datetime) -> ChannelBatch:
    return email_order.parse(path.read_bytes(), path.name, config, **kwargs)


def mail(body: str, sender: str = "purchasing@acme.example", message_id: str = "<a@b>") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "orders@orderflow.example"
    message["Subject"] = "Order"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def places(batch: ChannelBatch) -> list[tuple[int | None, str]]:
    return [(error.line, error.field) for error in batch.errors]


def expected(external_id: str, line: int, **data: object) -> ChannelOrder:
    order = parse_order({"order_id": order_id_for("mail", external_id), "channel": "email", **data})
    return ChannelOrder(channel="mail", external_id=external_id, order=order, line=line)


FRANKFURT = {
    "name": "ACME Industrial BV, Receiving",
    "street": "Hafenstrasse 12",
    "city": "Frankfurt am Main",
    "postal_code": "60327",
    "country": "DE",
}


def test_the_form_in_the_body_is_the_senders_order() -> None:
    batch = read(EXAMPLES / "email-order.eml")

    assert batch.errors == []
    assert batch.orders == [
        expected(
            "20261128093000.4711@mail.acme.example",
            5,
            customer_id="C-ACME",  # From: Purchasing@ACME.example, lowercased
            currency="EUR",
            lines=[
                {"sku": "KB-100", "quantity": 10, "unit_price": "45.00"},
                {"sku": "MN-27", "quantity": 2, "unit_price": "229.00"},
                {"sku": "CB-USB", "quantity": 20, "unit_price": "8.50"},
            ],
            ship_to=FRANKFURT,
            promised_date="2027-01-20",
            purchase_order="4711",
            submitted_by="purchasing@acme.example",
            contact_email="purchasing@acme.example",  # the buyer is told, not just the account
        )
    ]


def test_an_attached_850_is_read_as_edi_and_answered_with_a_997() -> None:
    batch = read(EXAMPLES / "email-order-850.eml", now=NOW)

    assert batch.errors == []
    assert batch.orders == [
        expected(
            "ACMEEDI/4500012346",
            3,
            customer_id="C-ACME",
            currency="EUR",
            lines=[
                {"sku": "MS-200", "quantity": 10, "unit_price": "19.90"},
                {"sku": "DK-01", "quantity": 4, "unit_price": "129.00"},
                {"sku": "CB-USB", "quantity": 40, "unit_price": "8.50"},
            ],
            ship_to={
                "name": "ACME Industrial BV, Warehouse Rotterdam",
                "street": "Waalhaven Oostzijde 80",
                "city": "Rotterdam",
                "postal_code": "3087 BM",
                "country": "NL",
            },
            promised_days=7,
            purchase_order="4500012346",
            submitted_by="J. Buyer",
        )
    ]
    assert batch.acknowledgement is not None
    assert "AK5*A~\nAK9*A*1*1*1~" in batch.acknowledgement
    assert read(EXAMPLES / "email-order-850.eml").acknowledgement is None


def test_the_demo_mail_channel_reads_both_examples() -> None:
    channels = json.loads((ROOT / "starter" / "demo" / "channels.json").read_text())
    demo = ChannelConfig.model_validate(next(c for c in channels if c["format"] == "email"))

    for name in ("email-order.eml", "email-order-850.eml"):
        batch = read(EXAMPLES / name, demo)
        assert batch.errors == []
        assert [item.order.customer_id for item in batch.orders] == ["C-ACME"]


def test_the_same_email_twice_names_the_same_orders() -> None:
    for path in (EXAMPLES / "email-order.eml", EXAMPLES / "email-order-850.eml"):
        first, again = read(path), read(path)
        assert [o.order.order_id for o in first.orders] == [o.order.order_id for o in again.orders]
        assert len(first.orders) == 1


def test_an_attached_csv_is_read_as_the_portal_csv() -> None:
    batch = read(SAMPLES / "email-csv-order.eml")

    assert batch.errors == []
    assert [(o.external_id, o.order.customer_id, o.order.ship_to.city) for o in batch.orders] == [
        ("C-SMALL/SO-PO-0095", "C-SMALL", "Amsterdam")
    ]


def test_a_customer_may_not_order_for_another_account() -> None:
    batch = read(SAMPLES / "email-csv-other-account.eml")

    assert [o.external_id for o in batch.orders] == ["C-ACME/PO-ACME-4730"]
    assert places(batch) == [(3, "customer_id")]
    error = batch.errors[0]
    assert error.source == "email-csv-other-account.eml/orders.csv"
    assert error.record == "C-SMALL/SO-PO-0096"
    assert "may not order for another account" in error.reason


def test_every_mistake_in_the_form_is_named_with_its_body_line() -> None:
    batch = read(SAMPLES / "email-bad-form.eml")

    assert batch.orders == []
    assert places(batch) == [
        (4, "Deliver by"),
        (9, "Country"),
        (10, "form"),
        (13, "quantity"),
        (14, "unit price"),
        (15, "SKU"),
        (16, "Lines"),
    ]
    reasons = [error.reason for error in batch.errors]
    assert "'20.12.2026' is not a date as YYYY-MM-DD" in reasons[0]
    assert "'France' is not a two-letter ISO country code" in reasons[1]
    assert "'Phone: +33 4 00 00 00 00' is not part of the form" in reasons[2]
    assert "2.5 is not a whole number" in reasons[3]
    assert "comma" in reasons[4]
    assert "'dk-01' is not a SKU" in reasons[5]
    assert "write SKU x quantity @ unit price" in reasons[6]
    assert {error.record for error in batch.errors} == {"so-po-0101@small-office.example"}


@pytest.mark.parametrize(
    ("name", "field", "words"),
    [
        ("email-unknown-sender.eml", "From", "mallory@unknown.example is not a known ordering"),
        ("email-no-order.eml", "e-mail", "no purchase order found"),
        ("email-broken-attachment.eml", "attachment SO-PO-0097.csv", "base64 is broken"),
    ],
)
def test_an_email_that_cannot_be_an_order_is_one_clear_error(
    name: str, field: str, words: str
) -> None:
    batch = read(SAMPLES / name, now=NOW)

    assert batch.orders == []
    assert [error.field for error in batch.errors] == [field]
    assert words in batch.errors[0].reason
    assert batch.acknowledgement is None


def test_a_channel_account_takes_any_sender() -> None:
    shop = MAIL.model_copy(update={"partners": {}, "customer_id": "C-SMALL"})

    batch = email_order.parse(mail(FORM, sender="someone@else.example"), "m.eml", shop)

    assert [o.order.customer_id for o in batch.orders] == ["C-SMALL"]


def test_deliver_within_days_and_the_channels_days() -> None:
    within = FORM.replace("Deliver by: 2027-01-20", "Deliver within: 5 days")
    neither = FORM.replace("Deliver by: 2027-01-20\n", "")

    assert email_order.parse(mail(within), "m", MAIL).orders[0].order.promised_days == 5
    assert email_order.parse(mail(neither), "m", MAIL).orders[0].order.promised_days == 7


@pytest.mark.parametrize(
    ("body", "message_id", "expected_places"),
    [
        (FORM, "", [(None, "Message-ID")]),
        (
            FORM.replace("Country: DE\n", "Country: DE\nDeliver within: 3\n"),
            "<x@y>",
            [(10, "Deliver within")],
        ),
        (FORM.replace("Street: Hafenstrasse 12\n", ""), "<x@y>", [(3, "Street")]),
        (
            FORM.replace("Lines:\n", ""),
            "<x@y>",
            [(3, "Lines"), (10, "form"), (11, "form"), (13, "form")],
        ),
        (FORM.replace("MN-27 x 2", "KB-100 x 2"), "<x@y>", [(12, "unit price")]),
        (
            FORM.replace("Currency", "").replace("Country: DE\n", "Country: DE\nCurrency: XYZ\n"),
            "<x@y>",
            [(10, "Currency")],
        ),
    ],
    ids=["no-message-id", "two-promises", "no-street", "no-lines", "sku-two-prices", "currency"],
)
def test_form_mistakes(
    body: str, message_id: str, expected_places: list[tuple[int | None, str]]
) -> None:
    batch = email_order.parse(mail(body, message_id=message_id), "m.eml", MAIL)

    assert batch.orders == []
    assert places(batch) == expected_places


def test_an_html_only_email_or_no_email_at_all_is_one_error() -> None:
    html = EmailMessage()
    html["From"] = "purchasing@acme.example"
    html["Message-ID"] = "<h@acme.example>"
    html.set_content("<p>PO: 4711</p>", subtype="html")

    assert places(email_order.parse(html.as_bytes(), "m", MAIL)) == [(None, "e-mail")]
    assert places(email_order.parse(b"\x00\xffnot mail", "m", MAIL)) == [(None, "From")]
    assert places(email_order.parse(b"From: nobody\n\nPO: 1", "m", MAIL)) == [(None, "From")]


def test_nothing_raises_on_cut_or_garbled_emails() -> None:
    rng = random.Random(5322)
    for path in (EXAMPLES / "email-order.eml", EXAMPLES / "email-order-850.eml"):
        data = path.read_bytes()
        payloads = [data[:cut] for cut in range(0, len(data), 7)]
        for _ in range(200):
            garbled = bytearray(data)
            for _ in range(rng.randint(1, 5)):
                garbled[rng.randrange(len(garbled))] = rng.choice(b":<>@=\n\r -x0189AZ\x00\xff")
            payloads.append(bytes(garbled))
        for payload in payloads:
            batch = email_order.parse(payload, path.name, MAIL, now=NOW)
            assert batch.orders or batch.errors


def test_a_message_id_too_long_to_be_a_reference_is_an_error_not_a_crash() -> None:
    raw = (EXAMPLES / "email-order.eml").read_bytes()
    raw = raw.replace(b"20261128093000.4711@", b"x" * 300 + b"@")
    batch = email_order.parse(raw, "long.eml", MAIL)
    assert batch.orders == []
    assert [e.field for e in batch.errors] == ["Message-ID"]
