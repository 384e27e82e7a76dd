"""EDI X12 850 intake: documented-format samples give exactly the expected orders, every broken
one a clear error naming segment and element, and the 997 says what was taken."""

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.channels import x12
from domain.channels.records import ChannelConfig, ChannelOrder, order_id_for
from domain.order import parse_order
from domain.statuses import Channel

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "channels" / "purchase-order.x12"
SAMPLES = Path(__file__).parent / "channel_samples"
NOW = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
EDI = ChannelConfig(
    name="edi",
    format="x12_850",
    order_channel=Channel.EDI,
    currency="EUR",
    promised_days=7,
    partners={"ACMEEDI": "C-ACME", "SMALLEDI": "C-SMALL"},
)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def acme_order(po_number: str = "4500012345", **changes: object) -> ChannelOrder:
    external_id = f"ACMEEDI/{po_number}"
    data = {
        "order_id": order_id_for("edi", external_id),
        "channel": "edi",
        "customer_id": "C-ACME",
        "currency": "EUR",
        "lines": [
            {"sku": "MN-27", "quantity": 10, "unit_price": "229.00"},
            {"sku": "KB-100", "quantity": 10, "unit_price": "45.00"},
            {"sku": "CB-USB", "quantity": 20, "unit_price": "8.50"},
        ],
        "ship_to": {
            "name": "ACME Industrial BV, Receiving",
            "street": "Hafenstrasse 12",
            "city": "Frankfurt am Main",
            "postal_code": "60327",
            "country": "DE",
        },
        "promised_date": "2027-01-15",
        "purchase_order": po_number,
        "submitted_by": "J. Buyer",
        **changes,
    }
    return ChannelOrder(channel="edi", external_id=external_id, order=parse_order(data), line=3)


def ack_body(acknowledgement: str | None) -> list[str]:
    """The 997's segments between its ST/AK1 and SE (the AK2 loops and AK9)."""
    assert acknowledgement is not None
    lines = acknowledgement.splitlines()
    return lines[4:-3]


def places(batch: x12.ChannelBatch) -> list[tuple[int | None, str]]:
    return [(error.line, error.field) for error in batch.errors]


def test_the_example_850_is_acmes_order() -> None:
    batch = x12.parse(EXAMPLE.read_bytes(), "purchase-order.x12", EDI)

    assert batch.errors == []
    assert batch.orders == [acme_order()]
    assert batch.orders[0].order.order_id == "edi-ACMEEDI.4500012345"
    assert batch.acknowledgement is None  # no clock given: no 997


def test_the_bundled_demo_channel_reads_the_example() -> None:
    channels = json.loads((ROOT / "starter" / "demo" / "channels.json").read_text())
    demo = ChannelConfig.model_validate(next(c for c in channels if c["format"] == "x12_850"))

    batch = x12.parse(EXAMPLE.read_bytes(), "purchase-order.x12", demo)

    assert batch.errors == []
    assert [item.order.customer_id for item in batch.orders] == ["C-ACME"]


def test_the_same_interchange_twice_names_the_same_order_and_997() -> None:
    first = x12.parse(EXAMPLE.read_bytes(), "a.x12", EDI, now=NOW)
    again = x12.parse(EXAMPLE.read_bytes(), "b.x12", EDI, now=NOW)

    assert [o.order.order_id for o in first.orders] == [o.order.order_id for o in again.orders]
    assert first.acknowledgement == again.acknowledgement


def test_a_good_850_is_accepted_by_a_997_addressed_back_to_the_sender() -> None:
    batch = x12.parse(EXAMPLE.read_bytes(), "purchase-order.x12", EDI, now=NOW)

    assert batch.acknowledgement == (
        "ISA*00*          *00*          *ZZ*ORDERFLOW      *ZZ*ACMEEDI        *261128*1005*U*"
        "00401*000004711*0*P*>~\n"
        "GS*FA*ORDERFLOW*ACMEEDI*20261128*1005*4711*X*004010~\n"
        "ST*997*0001~\n"
        "AK1*PO*4711~\n"
        "AK2*850*0001~\n"
        "AK5*A~\n"
        "AK9*A*1*1*1~\n"
        "SE*6*0001~\n"
        "GE*1*4711~\n"
        "IEA*1*000004711~\n"
    )
    assert len(batch.acknowledgement.splitlines()[0]) == x12.ISA_LENGTH


def test_the_997_takes_the_callers_control_number() -> None:
    batch = x12.parse(EXAMPLE.read_bytes(), "p.x12", EDI, now=NOW, control_number=815)

    assert batch.acknowledgement is not None
    lines = batch.acknowledgement.splitlines()
    assert "*000000815*" in lines[0]
    assert lines[1].split("*")[6] == "815"
    assert lines[-1] == "IEA*1*000000815~"


def test_the_997_is_itself_a_sound_interchange() -> None:
    """Its ISA width, SE01, GE and IEA counts hold: read back, only its FA group and 997 set
    are foreign to an 850 reader."""
    for name in ("x12-bad-lines.x12", "x12-group-mismatch.x12"):
        answer = x12.parse(sample(name), name, EDI, now=NOW).acknowledgement
        assert answer is not None

        read_back = x12.parse(answer.encode(), "997", EDI)

        assert {error.field for error in read_back.errors} == {"GS01", "ST01"}


def test_a_bad_850_is_rejected_by_segment_and_element_while_its_neighbour_is_placed() -> None:
    batch = x12.parse(sample("x12-bad-lines.x12"), "x12-bad-lines.x12", EDI, now=NOW)

    assert [o.external_id for o in batch.orders] == ["ACMEEDI/4500012346"]
    assert places(batch) == [
        (23, "PO1[1].PO102"),
        (24, "PO1[2].PO103"),
        (24, "PO1[2].PO106"),
        (25, "PO1[3].PO104"),
        (25, "PO1[3].PO107"),
    ]
    assert {error.record for error in batch.errors} == {"ACMEEDI/4500012347"}
    reasons = [error.reason for error in batch.errors]
    assert "2.5 is not a whole number" in reasons[0]
    assert "'CA' is not sold" in reasons[1]
    assert "qualified VP" in reasons[2]
    assert "comma" in reasons[3]
    assert "'ms-200' is not a SKU" in reasons[4]
    assert ack_body(batch.acknowledgement) == [
        "AK2*850*0001~",
        "AK5*A~",
        "AK2*850*0002~",
        "AK3*PO1*9**8~",
        "AK4*2*330*6*2.5~",
        "AK3*PO1*10**8~",
        "AK4*3*355*7*CA~",
        "AK4*6*235*2*BP~",
        "AK3*PO1*11**8~",
        "AK4*4*212*6*19,90~",
        "AK4*7*234*6*ms-200~",
        "AK5*R*5~",
        "AK9*P*2*2*1~",
    ]


@pytest.mark.parametrize(
    ("name", "expected", "words", "ak9"),
    [
        ("x12-no-isa.x12", [(1, "ISA")], "starts with ISA", None),
        ("x12-short-isa.x12", [(1, "ISA06")], "is 7 characters, it must be 15", None),
        ("x12-control-mismatch.x12", [(16, "IEA02")], "does not match ISA13", "AK9*R*1*1*0~"),
        ("x12-group-mismatch.x12", [(15, "GE02")], "does not match GS06", "AK9*R*1*1*0*4~"),
        ("x12-no-iea.x12", [(None, "IEA"), (2, "GE")], "no IEA trailer", "AK9*R*1*1*0*3~"),
        ("x12-segment-count.x12", [(14, "SE01")], "ST to SE are 12", "AK9*R*1*1*0~"),
        ("x12-not-850.x12", [(3, "ST01")], "'810' is not read", "AK9*R*1*1*0~"),
        ("x12-no-ship-to.x12", [(11, "N1[ST]")], "send N1*ST", "AK9*R*1*1*0~"),
        ("x12-unknown-partner.x12", [(1, "ISA06")], "'STRANGER' is not a trading", "AK9*R*1*1*0~"),
        ("x12-ctt-mismatch.x12", [(13, "CTT01")], "the order has 2 PO1", "AK9*R*1*1*0~"),
        (
            "x12-bad-dates.x12",
            [(4, "BEG05"), (6, "DTM[002].DTM02")],
            "is not the order date as CCYYMMDD",
            "AK9*R*1*1*0~",
        ),
    ],
)
def test_a_broken_interchange_says_where_and_places_nothing(
    name: str, expected: list[tuple[int | None, str]], words: str, ak9: str | None
) -> None:
    batch = x12.parse(sample(name), name, EDI, now=NOW)

    assert batch.orders == []
    assert places(batch) == expected
    assert words in batch.errors[0].reason
    if ak9 is None:  # the ISA cannot be read: nobody to address a 997 to
        assert batch.acknowledgement is None
    else:
        assert ack_body(batch.acknowledgement)[-1] == ak9
        assert "AK5*A~" not in ack_body(batch.acknowledgement)


def test_the_997_points_at_the_missing_ship_to_and_the_wrong_segment_count() -> None:
    no_ship_to = x12.parse(sample("x12-no-ship-to.x12"), "s", EDI, now=NOW)
    miscounted = x12.parse(sample("x12-segment-count.x12"), "s", EDI, now=NOW)

    assert ack_body(no_ship_to.acknowledgement)[1:3] == ["AK3*N1*9**3~", "AK5*R*5~"]
    assert ack_body(miscounted.acknowledgement)[1] == "AK5*R*4~"  # segment count wrong


def test_the_isa_defines_the_separators_and_line_breaks_are_ignored() -> None:
    text = EXAMPLE.read_text()
    on_one_line = text.replace("~\n", "~")
    crlf = text.replace("~\n", "~\r\n")

    for payload in (on_one_line, crlf, sample("x12-other-separators.x12").decode()):
        batch = x12.parse(payload.encode(), "p.x12", EDI)
        assert batch.errors == []
        assert [o.order.customer_id for o in batch.orders] == ["C-ACME"]
    assert x12.parse(on_one_line.encode(), "p.x12", EDI).orders == [acme_order()]


def test_a_sender_ordering_for_several_accounts_is_mapped_by_its_buyer_code() -> None:
    hub = EDI.model_copy(update={"partners": {"ACMEEDI": "C-ACME", "ACMEEDI/HUB-7": "C-SMALL"}})
    text = EXAMPLE.read_text()

    by_hub = x12.parse(text.replace("*91*C-ACME~", "*91*HUB-7~").encode(), "p", hub)
    naming_another = x12.parse(text.replace("*91*C-ACME~", "*91*C-SMALL~").encode(), "p", hub)

    assert [o.order.customer_id for o in by_hub.orders] == ["C-SMALL"]
    assert [o.order.customer_id for o in naming_another.orders] == ["C-ACME"]


def test_without_date_or_currency_the_channel_terms_apply() -> None:
    text = EXAMPLE.read_text().replace("CUR*BY*EUR~\n", "").replace("DTM*002*20270115~\n", "")
    text = text.replace("SE*18*0001", "SE*16*0001")

    batch = x12.parse(text.encode(), "p.x12", EDI)
    no_currency = x12.parse(text.encode(), "p.x12", EDI.model_copy(update={"currency": None}))

    assert batch.orders == [acme_order(promised_date=None, promised_days=7)]
    assert places(no_currency) == [(4, "CUR02")]


def test_the_same_sku_twice_is_one_line_at_one_price_and_an_error_at_two() -> None:
    text = EXAMPLE.read_text()
    same = text.replace("PO1*3*20*EA*8.50*PE*VP*CB-USB", "PO1*3*5*EA*45.00*PE*VP*KB-100")
    other = text.replace("PO1*3*20*EA*8.50*PE*VP*CB-USB", "PO1*3*5*EA*49.90*PE*VP*KB-100")

    merged = x12.parse(same.encode(), "p", EDI).orders[0].order
    conflict = x12.parse(other.encode(), "p", EDI)

    assert [(line.sku, line.quantity) for line in merged.lines] == [("MN-27", 10), ("KB-100", 15)]
    assert places(conflict) == [(17, "PO1[3].PO104")]
    assert "also on PO1[2] at 45.00" in conflict.errors[0].reason


def test_a_test_interchange_and_a_changed_order_are_not_placed() -> None:
    text = EXAMPLE.read_text()
    test_data = text.replace("*0*P*>~", "*0*T*>~")
    change = text.replace("BEG*00*SA", "BEG*05*SA")

    assert places(x12.parse(test_data.encode(), "p", EDI)) == [(1, "ISA15")]
    assert places(x12.parse(change.encode(), "p", EDI)) == [(4, "BEG01")]


def test_one_po_sent_twice_in_an_interchange_is_placed_once() -> None:
    lines = EXAMPLE.read_text().splitlines(keepends=True)
    one_set = lines[2:20]
    second = [line.replace("0001~", "0002~") for line in one_set]
    text = "".join([*lines[:20], *second, *lines[20:]]).replace("GE*1*4711", "GE*2*4711")

    batch = x12.parse(text.encode(), "p", EDI, now=NOW)

    assert [o.external_id for o in batch.orders] == ["ACMEEDI/4500012345"]
    assert places(batch) == [(21, "BEG03")]
    assert ack_body(batch.acknowledgement)[-1] == "AK9*P*2*2*1~"


def test_nothing_raises_on_cut_or_garbled_interchanges() -> None:
    """Every prefix of the example and a few hundred random corruptions: an answer each time."""
    data = EXAMPLE.read_bytes()
    rng = random.Random(850)
    payloads = [data[:cut] for cut in range(len(data))]
    for _ in range(500):
        garbled = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            garbled[rng.randrange(len(garbled))] = rng.choice(b"*~>\n\r 0189AZaz.-\x00\xff")
        payloads.append(bytes(garbled))
    payloads += [b"", b"\xff\xfe", bytes(rng.randrange(256) for _ in range(300))]

    for payload in payloads:
        batch = x12.parse(payload, "p.x12", EDI, now=NOW)
        assert batch.orders or batch.errors
