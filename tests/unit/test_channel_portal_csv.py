"""B2B portal CSV exports: one file, many orders, one row per order line."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from domain.channels.portal_csv import parse
from domain.channels.records import ChannelBatch, ChannelConfig, order_id_for
from domain.order import Address, Order, OrderLine

SAMPLE = Path(__file__).parents[2] / "examples" / "channels" / "portal-orders.csv"
BAD = Path(__file__).parent / "channel_samples"

PORTAL = ChannelConfig(
    name="portal", format="csv", order_channel="b2b", currency="EUR", promised_days=7
)
HEADER = (
    "po_number,customer_id,sku,quantity,unit_price,currency,ship_name,ship_street,ship_city,"
    "ship_postal_code,ship_country,promised_date,requested_by,promised_days"
)
ACME = '"ACME Industrial BV, Receiving",Hafenstrasse 12,Frankfurt am Main,60327,DE'
SMALL = "Small Office GmbH,Torstraße 49,Berlin,10119,DE"


def read(text: str, config: ChannelConfig = PORTAL) -> ChannelBatch:
    return parse(text.encode(), "upload.csv", config)


def csv_of(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


def where(batch: ChannelBatch) -> list[tuple[int | None, str]]:
    return [(error.line, error.field) for error in batch.errors]


def placed(batch: ChannelBatch) -> list[str]:
    return [order.external_id for order in batch.orders]


def expected_orders() -> list[Order]:
    acme = Address(
        name="ACME Industrial BV, Receiving",
        street="Hafenstrasse 12",
        city="Frankfurt am Main",
        postal_code="60327",
        country="DE",
    )
    small = Address(
        name="Small Office GmbH",
        street="Torstraße 49",
        city="Berlin",
        postal_code="10119",
        country="DE",
    )
    iberica = Address(
        name="ACME Ibérica SL, Almacén",
        street="Calle de Alcalá 48",
        city="Madrid",
        postal_code="28014",
        country="ES",
    )
    lyon = Address(
        name="Small Office SARL, Accueil",
        street="14 Rue de la République",
        city="Lyon",
        postal_code="69002",
        country="FR",
    )

    def order(reference: str, customer: str, ship_to: Address, **rest: object) -> Order:
        return Order.model_validate(
            {
                "order_id": order_id_for("portal", f"{customer}/{reference}"),
                "channel": "b2b",
                "customer_id": customer,
                "currency": "EUR",
                "ship_to": ship_to,
                "purchase_order": reference,
                **rest,
            }
        )

    def line(sku: str, quantity: int, price: str) -> OrderLine:
        return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal(price))

    return [
        order(
            "PO-ACME-4711",
            "C-ACME",
            acme,
            lines=[
                line("MN-27", 4, "229.00"),
                line("KB-100", 10, "45.00"),
                line("CB-USB", 20, "8.50"),
            ],
            promised_days=5,
            submitted_by="j.buyer",
        ),
        order(
            "SO-PO-0093",
            "C-SMALL",
            small,
            lines=[line("DK-01", 2, "129.00"), line("HS-50", 3, "79.00")],
            promised_date=date(2027, 1, 29),
            submitted_by="k.weber",
        ),
        order(
            "PO-ACME-4712",
            "C-ACME",
            iberica,
            lines=[line("LT-14", 2, "1199.00")],
            promised_days=7,
            submitted_by="m.lopez",
        ),
        order(
            "SO-PO-0094",
            "C-SMALL",
            lyon,
            lines=[line("CH-ERG", 1, "399.00"), line("MS-200", 2, "19.90")],
            promised_days=7,
            submitted_by="k.weber",
        ),
    ]


def test_the_sample_export_is_exactly_its_four_orders() -> None:
    batch = parse(SAMPLE.read_bytes(), SAMPLE.name, PORTAL)

    assert batch.errors == []
    assert [(o.channel, o.external_id, o.line) for o in batch.orders] == [
        ("portal", "C-ACME/PO-ACME-4711", 2),
        ("portal", "C-SMALL/SO-PO-0093", 5),
        ("portal", "C-ACME/PO-ACME-4712", 7),
        ("portal", "C-SMALL/SO-PO-0094", 8),
    ]
    assert [o.order for o in batch.orders] == expected_orders()
    assert batch.orders[0].order.total == Decimal("1536.00")


def test_the_same_file_twice_gives_the_same_order_ids() -> None:
    first = parse(SAMPLE.read_bytes(), "monday.csv", PORTAL)
    again = parse(SAMPLE.read_bytes(), "monday-resent.csv", PORTAL)

    ids = [o.order.order_id for o in first.orders]
    assert ids == [o.order.order_id for o in again.orders]
    assert len(set(ids)) == 4
    assert all(order_id.startswith("portal-C-") for order_id in ids)


def test_an_excel_export_with_bom_crlf_quotes_and_capitals_reads_the_same() -> None:
    path = BAD / "portal-excel-export.csv"
    assert path.read_bytes().startswith(b'\xef\xbb\xbf"Po_Number"')
    assert b"\r\n" in path.read_bytes()

    batch = parse(path.read_bytes(), path.name, PORTAL)

    assert batch.errors == []
    assert [o.order for o in batch.orders] == expected_orders()


def test_a_mixed_file_places_its_good_orders_and_names_every_bad_value() -> None:
    path = BAD / "portal-mixed.csv"
    batch = parse(path.read_bytes(), path.name, PORTAL)

    assert placed(batch) == ["C-SMALL/SO-PO-0101", "C-ACME/PO-ACME-4803"]
    assert where(batch) == [
        (3, "quantity"),
        (4, "unit_price"),
        (6, "quantity"),
        (7, "quantity"),
        (8, "unit_price"),
        (8, "promised_date"),
        (9, "promised_date"),
        (11, "ship_street"),
    ]
    reasons = [error.reason for error in batch.errors]
    assert "2.5 is not a whole number" in reasons[0]
    assert "'8,50' has a comma" in reasons[1]
    assert reasons[2].startswith("missing")
    assert "'abc' is not a number" in reasons[3]
    assert "9.905 has 3 decimals; EUR amounts have at most 2" in reasons[4]
    assert "'31/01/2027' is not a date as YYYY-MM-DD" in reasons[5]
    assert "2027-02-30 is not a date of the calendar" in reasons[6]
    assert "differs from 'Calle de Alcalá 48' on line 10" in reasons[7]
    assert {error.source for error in batch.errors} == {path.name}
    assert batch.errors[0].record == "C-ACME/PO-ACME-4801"
    assert str(batch.errors[0]).startswith("portal-mixed.csv:3 (C-ACME/PO-ACME-4801): quantity:")


def test_an_order_with_one_bad_row_is_not_placed_even_in_part() -> None:
    batch = read(
        csv_of(
            f"PO-1,C-ACME,MN-27,4,229.00,EUR,{ACME},,,",
            f"PO-1,C-ACME,KB-100,ten,45.00,EUR,{ACME},,,",
        )
    )

    assert batch.orders == []
    assert where(batch) == [(3, "quantity")]


@pytest.mark.parametrize(
    ("sample", "line", "field", "reason"),
    [
        ("portal-unknown-column.csv", 1, "header", "unknown column(s) 'colour'; missing"),
        ("portal-semicolons.csv", 1, "header", "separated by semicolons"),
        ("portal-windows-1252.csv", 5, "file", "is not UTF-8 text (byte 0xDF on line 5)"),
        ("portal-broken-quote.csv", 3, "file", "is not readable CSV from here on"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_clear_error(
    sample: str, line: int, field: str, reason: str
) -> None:
    batch = parse((BAD / sample).read_bytes(), sample, PORTAL)

    assert batch.orders == []
    [error] = batch.errors
    assert (error.source, error.line, error.field) == (sample, line, field)
    assert reason in error.reason


def test_a_missing_column_is_named_with_the_expected_columns() -> None:
    [error] = read(HEADER.replace(",ship_country", "") + "\n").errors

    assert (error.line, error.field) == (1, "header")
    assert error.reason.startswith("missing column(s) ship_country (the columns are po_number")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "is empty"), ("\n\n", "is empty"), (HEADER + "\n", "has a header but no order rows")],
)
def test_a_file_without_orders_says_so(text: str, reason: str) -> None:
    [error] = read(text).errors
    assert reason in error.reason


def test_columns_are_matched_case_insensitively_in_any_order() -> None:
    header = "SKU, Quantity ,Unit_Price,PO_NUMBER,Customer_ID,Currency,Ship_Name,Ship_Street,"
    header += "Ship_City,Ship_Postal_Code,Ship_Country,Promised_Date"
    text = (
        header
        + "\nKB-100,3,49.90,PO-9,C-SMALL,EUR,Small Office GmbH,Torstraße 49,Berlin,10119,DE,\n"
    )

    [got] = read(text).orders

    assert got.external_id == "C-SMALL/PO-9"
    assert got.order.lines == [OrderLine(sku="KB-100", quantity=3, unit_price=Decimal("49.90"))]
    assert got.order.promised_days == 7  # no promised date: the channel's promise


def test_line_numbers_are_physical_lines_even_across_a_quoted_line_break() -> None:
    batch = read(
        csv_of(
            'PO-1,C-ACME,MN-27,4,229.00,EUR,ACME,"Hafenstrasse 12\nTor 3",Frankfurt,60327,DE,,,',
            "PO-2,C-ACME,KB-100,x,45.00,EUR,ACME,Hafenstrasse 12,Frankfurt,60327,DE,,,",
        )
    )

    assert placed(batch) == ["C-ACME/PO-1"]
    assert batch.orders[0].order.ship_to.street == "Hafenstrasse 12\nTor 3"
    assert where(batch) == [(4, "quantity")]


def test_a_row_with_an_unquoted_comma_is_an_error_on_that_row() -> None:
    batch = read(
        csv_of(
            f"PO-1,C-ACME,MN-27,4,229.00,EUR,{ACME},,,",
            "PO-1,C-ACME,KB-100,10,45.00,EUR,ACME Industrial BV, Receiving,Hafenstrasse 12,"
            "Frankfurt am Main,60327,DE,,,",
        )
    )

    assert batch.orders == []
    [error] = batch.errors
    assert (error.line, error.field) == (3, "row")
    assert "has 15 values where the header has 14 columns" in error.reason


def test_a_row_without_purchase_order_is_reported_and_the_others_are_placed() -> None:
    batch = read(
        csv_of(
            f",C-ACME,MN-27,4,229.00,EUR,{ACME},,,",
            f"PO-2,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,",
        )
    )

    assert placed(batch) == ["C-SMALL/PO-2"]
    assert where(batch) == [(2, "po_number")]


def test_same_sku_on_two_rows_adds_up_only_at_the_same_price() -> None:
    same = read(
        csv_of(
            f"PO-1,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,",
            f"PO-1,C-SMALL,HS-50,2,79.0,EUR,{SMALL},,,",
        )
    )
    assert [(line.sku, line.quantity) for line in same.orders[0].order.lines] == [("HS-50", 3)]

    other = read(
        csv_of(
            f"PO-1,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,",
            f"PO-1,C-SMALL,HS-50,2,75.00,EUR,{SMALL},,,",
        )
    )
    assert other.orders == []
    [error] = other.errors
    assert (error.line, error.field) == (3, "unit_price")
    assert "HS-50 is also on line 2 at 79.00" in error.reason


@pytest.mark.parametrize(
    ("second", "field"),
    [
        (f"PO-1,C-SMALL,MS-200,1,19.90,USD,{SMALL},,,", "currency"),
        (
            "PO-1,C-SMALL,MS-200,1,19.90,EUR,Small Office GmbH,Torstraße 49,Berlin,10119,AT,,,",
            "ship_country",
        ),
        (f"PO-1,C-SMALL,MS-200,1,19.90,EUR,{SMALL},2027-02-01,,", "promised_date"),
        (f"PO-1,C-SMALL,MS-200,1,19.90,EUR,{SMALL},,someone.else,", "requested_by"),
    ],
)
def test_rows_of_one_order_disagreeing_on_the_order_is_an_error_on_the_row(
    second: str, field: str
) -> None:
    batch = read(csv_of(f"PO-1,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,", second))

    assert batch.orders == []
    assert where(batch) == [(3, field)]
    assert "on line 2 of the same order" in batch.errors[0].reason


def test_the_promise_is_the_date_else_the_days_else_the_channels() -> None:
    batch = read(
        csv_of(
            f"PO-1,C-SMALL,HS-50,1,79.00,EUR,{SMALL},2027-03-01,,",
            f"PO-2,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,3",
            f"PO-3,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,",
            f"PO-4,C-SMALL,HS-50,1,79.00,EUR,{SMALL},2027-03-01,,3",
            f"PO-5,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,120",
        )
    )

    promises = [(o.order.promised_date, o.order.promised_days) for o in batch.orders]
    assert promises == [(date(2027, 3, 1), None), (None, 3), (None, 7)]
    assert where(batch) == [(5, "promised_days"), (6, "promised_days")]
    assert "not both" in batch.errors[0].reason


def test_currency_and_country_are_read_case_insensitively_and_default_to_the_channel() -> None:
    batch = read(
        csv_of(
            "PO-1,C-SMALL,HS-50,1,79.00,eur,Small Office GmbH,Torstraße 49,Berlin,10119,de,,,",
            f"PO-2,C-SMALL,HS-50,1,79.00,,{SMALL},,,",
        )
    )

    assert [(o.order.currency, o.order.ship_to.country) for o in batch.orders] == [
        ("EUR", "DE"),
        ("EUR", "DE"),
    ]
    no_currency = PORTAL.model_copy(update={"currency": None})
    assert where(read(csv_of(f"PO-2,C-SMALL,HS-50,1,79.00,,{SMALL},,,"), no_currency)) == [
        (2, "currency")
    ]


def test_customers_are_mapped_by_partners_and_a_single_account_channel_keeps_to_it() -> None:
    rows = csv_of(
        f"PO-1,acme-portal-17,HS-50,1,79.00,EUR,{ACME},,,",
        f"PO-2,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,",
    )
    mapped = PORTAL.model_copy(update={"partners": {"acme-portal-17": "C-ACME"}})
    assert [o.order.customer_id for o in read(rows, mapped).orders] == ["C-ACME", "C-SMALL"]

    acme_only = mapped.model_copy(update={"customer_id": "C-ACME"})
    batch = read(rows, acme_only)
    assert placed(batch) == ["acme-portal-17/PO-1"]
    assert where(batch) == [(3, "customer_id")]
    assert "books orders for C-ACME" in batch.errors[0].reason


def test_a_limit_of_the_order_is_reported_on_the_row_it_comes_from() -> None:
    batch = read(
        csv_of(
            f"PO-1,C-SMALL,HS-50,1,79.00,EUR,{SMALL},,,",
            f"PO-1,C-SMALL,CB-USB,100001,9.90,EUR,{SMALL},,,",
        )
    )

    assert where(batch) == [(3, "quantity")]
    assert "100000" in batch.errors[0].reason


ODD_CELLS = [
    "",
    " ",
    "-1",
    "0",
    "1e3",
    "NaN",
    "١٢",
    "9" * 400,
    "9" * 5000,
    '"',
    "\x00",
    "x\ny",
    "🙂",
]


@pytest.mark.parametrize("odd", ODD_CELLS, ids=repr)
def test_no_cell_anywhere_makes_the_adapter_raise(odd: str) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    width = len(HEADER.split(","))
    for column in range(width):
        row = lines[1].split(",")
        row[column if column < 6 else column + 1] = odd  # the name holds a quoted comma
        text = "\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n"

        batch = read(text)

        assert len(batch.orders) <= 5  # a changed po_number or customer_id starts an order
        assert batch.errors or len(batch.orders) >= 4
