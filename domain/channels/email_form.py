"""The purchase order an e-mail's plain-text body holds, written as a form (names in any case;
text before `PO:`, a greeting, is ignored; the lines end at the first blank line, so a
signature is too):

    PO: 4711
    Deliver by: 2026-12-20        or  Deliver within: 5 days   (neither: the channel's days)
    Ship to: ACME Industrial BV, Receiving
    Street: Hafenstrasse 12
    City: Frankfurt am Main
    Postal code: 60327
    Country: DE
    Currency: EUR                 (optional: the channel's currency)
    Lines:
    KB-100 x 10 @ 45.00
    MN-27 x 2 @ 229.00

Each line is `SKU x quantity @ unit price`; the same SKU twice at one price is one line.
The external id is the Message-ID without <>, so the same e-mail replayed names the same
order; submitted_by is the sender's address. Errors: `line` is the body's line (1 = its first
line) and `field` the form's name (`Deliver by`, `quantity`).
"""

import re
from datetime import date
from typing import Any

from domain.channels.records import (
    ChannelBatch,
    ChannelConfig,
    ChannelOrder,
    RecordError,
    amount_problem,
    build_order,
    currency_problem,
    merge_same_sku,
    order_id_for,
    sku_problem,
)
from domain.order import Order

FORM = (
    *("PO", "Deliver by", "Deliver within", "Ship to", "Street", "City", "Postal code"),
    *("Country", "Currency", "Lines"),
)
_NAMES = {name.lower(): name for name in FORM}
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$")
_LINE = re.compile(r"^\s*(\S+)\s+[xX\u00d7]\s+(\S+)\s+@\s+(\S+)\s*$")
_DAYS = re.compile(r"^([0-9]{1,3})(\s+days?)?$", re.IGNORECASE)
_ADDRESS = {"name": "Ship to", "street": "Street", "city": "City", "postal_code": "Postal code"}
_ADDRESS["country"] = "Country"
_FIELDS = {f"ship_to.{key}": name for key, name in _ADDRESS.items()}
_FIELDS |= {"ship_to": "Ship to", "purchase_order": "PO", "currency": "Currency"}
_FIELDS |= {"promised_date": "Deliver by", "promised_days": "Deliver within", "lines": "Lines"}


def has_form(text: str) -> bool:
    """Whether the body holds an order form: a `PO:` line."""
    return any(_form_name(line) == "PO" for line in text.splitlines())


def read_form(
    text: str, message_id: str, sender: str, customer: str, source: str, config: ChannelConfig
) -> ChannelBatch:
    """The order the form in `text` describes, or an error per problem; `text` must hold the
    form (`has_form`)."""
    form = _Form(source, message_id)
    form.read(text)
    if not message_id:
        reason = "missing: the e-mail needs one so that sending it again is recognised"
        form.problem(None, "Message-ID", reason)
    elif len(message_id) > 200:
        form.problem(None, "Message-ID", f"{len(message_id)} characters, at most 200 are read")
    result = form.order(sender, customer, config)
    if result is None:
        return ChannelBatch(errors=sorted(form.errors, key=lambda error: error.line or 0))
    item = ChannelOrder(channel=config.name, external_id=message_id, order=result, line=form.start)
    return ChannelBatch(orders=[item])


def _form_name(line: str) -> str | None:
    """The form's name a `Name: value` line starts with, or None."""
    found = _FIELD.match(line)
    return _NAMES.get(found.group(1).lower()) if found else None


class _Form:
    """The body's order form as read: its values by name, its lines and its problems."""

    def __init__(self, source: str, record: str | None) -> None:
        self.source = source
        self.record = record or None
        self.values: dict[str, tuple[str, int]] = {}  # name -> (value, body line)
        self.lines: list[tuple[str, str, str, int]] = []  # sku, quantity, price, body line
        self.errors: list[RecordError] = []
        self.start = 0

    def problem(self, line: int | None, name: str, reason: str) -> None:
        self.errors.append(
            RecordError(
                source=self.source, line=line, record=self.record, field=name, reason=reason
            )
        )

    def read(self, text: str) -> None:
        """Read the form from the `PO:` line to the blank line after its lines."""
        rows = text.splitlines()
        self.start = next(n for n, row in enumerate(rows, 1) if _form_name(row) == "PO")
        in_lines = False
        for number, row in enumerate(rows[self.start - 1 :], self.start):
            if in_lines:
                if not row.strip() or row.startswith("-- "):
                    if self.lines or row.startswith("-- "):
                        return
                    continue
                self._line(row, number)
            elif row.strip():
                in_lines = self._field(row, number)

    def _field(self, row: str, number: int) -> bool:
        """Read one `Name: value` row; True when it is `Lines:`."""
        name = _form_name(row)
        found = _FIELD.match(row)
        if name is None or found is None:
            reason = (
                f"{row.strip()[:60]!r} is not part of the form: write 'Name: value' with one "
                f"of {', '.join(FORM)}"
            )
            self.problem(number, "form", reason)
            return False
        if name in self.values:
            self.problem(number, name, f"is given twice (first on line {self.values[name][1]})")
            return False
        self.values[name] = (found.group(2), number)
        if name == "Lines" and found.group(2):
            self._line(found.group(2), number)
        return name == "Lines"

    def _line(self, row: str, number: int) -> None:
        found = _LINE.match(row)
        if found is None:
            reason = (
                f"{row.strip()[:60]!r} is not an order line: write SKU x quantity @ unit price, "
                "e.g. KB-100 x 10 @ 45.00"
            )
            self.problem(number, "Lines", reason)
            return
        sku, quantity, price = found.groups()
        self.lines.append((sku, quantity, price, number))

    def value(self, name: str) -> str:
        return self.values.get(name, ("", 0))[0]

    def line_of(self, name: str) -> int | None:
        return self.values[name][1] if name in self.values else self.start

    def order(self, sender: str, customer: str, config: ChannelConfig) -> Order | None:
        """The canonical order, or None with every problem in `errors`."""
        currency = self.value("Currency").upper() or config.currency or ""
        header = self._header(currency, config)
        lines = [self._order_line(*line, currency) for line in self.lines]
        if not self.lines and not any(error.field == "Lines" for error in self.errors):
            reason = "no order lines: write 'Lines:' and below it e.g. KB-100 x 10 @ 45.00"
            self.problem(self.line_of("Lines"), "Lines", reason)
        if self.errors or header is None:
            return None
        merged, origin, conflicts = merge_same_sku([line for line in lines if line])
        for later, earlier in conflicts:
            sku, _, _, number = self.lines[later]
            reason = (
                f"{sku} is also on line {self.lines[earlier][3]}; one SKU has one price per order"
            )
            self.problem(number, "unit price", reason)
        if conflicts:
            return None
        data = {
            "order_id": order_id_for(config.name, self.record or ""),
            "channel": config.order_channel.value,
            "customer_id": customer,
            "lines": merged,
            "submitted_by": sender if len(sender) <= 64 else None,
            "contact_email": sender,
            **header,
        }
        fields = dict(_FIELDS)
        for index, at in enumerate(origin):
            fields |= {
                f"lines.{index}.{key}": f"#{at}.{key}" for key in ("sku", "quantity", "unit_price")
            }
        result = build_order(data, self.source, self.start, self.record, fields)
        if isinstance(result, list):
            self.errors.extend(self._on_their_line(error) for error in result)
            return None
        return result

    def _header(self, currency: str, config: ChannelConfig) -> dict[str, Any] | None:
        """PO, promise, currency and ship-to, or None with a problem per bad value."""
        before = len(self.errors)
        for name in ("PO", *_ADDRESS.values()):
            if not self.value(name):
                self.problem(
                    self.line_of(name), name, "missing: needed to place and ship the order"
                )
        if len(self.value("PO")) > 64:
            self.problem(self.line_of("PO"), "PO", "is longer than 64 characters")
        country = self.value("Country").upper()
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            reason = f"{self.value('Country')!r} is not a two-letter ISO country code such as DE"
            self.problem(self.line_of("Country"), "Country", reason)
        problem = currency_problem(currency)
        if problem:
            self.problem(self.line_of("Currency"), "Currency", problem)
        promise = self._promise(config)
        if len(self.errors) > before or promise is None:
            return None
        address = {key: self.value(name) for key, name in _ADDRESS.items()}
        address["country"] = country
        return {
            "currency": currency,
            "ship_to": address,
            "purchase_order": self.value("PO"),
            **promise,
        }

    def _promise(self, config: ChannelConfig) -> dict[str, Any] | None:
        by, within = self.value("Deliver by"), self.value("Deliver within")
        if by and within:
            reason = "give Deliver by or Deliver within, not both"
            self.problem(self.line_of("Deliver within"), "Deliver within", reason)
            return None
        if by:
            try:
                return {"promised_date": date.fromisoformat(by)}
            except ValueError:
                reason = f"{by!r} is not a date as YYYY-MM-DD, e.g. 2026-12-20"
                self.problem(self.line_of("Deliver by"), "Deliver by", reason)
                return None
        if within:
            found = _DAYS.match(within)
            if found is None or not 1 <= int(found.group(1)) <= 90:
                reason = f"{within!r} is not a number of days from 1 to 90, e.g. 5 days"
                self.problem(self.line_of("Deliver within"), "Deliver within", reason)
                return None
            return {"promised_days": int(found.group(1))}
        return {"promised_days": config.promised_days}

    def _order_line(
        self, sku: str, quantity: str, price: str, number: int, currency: str
    ) -> dict[str, Any] | None:
        """One order line, or None with a problem per bad value."""
        problems = {
            "SKU": sku_problem(sku),
            "quantity": _quantity_problem(quantity),
            "unit price": amount_problem(price, currency),
        }
        for name, reason in problems.items():
            if reason:
                self.problem(number, name, reason)
        if any(problems.values()):
            return None
        return {"sku": sku, "quantity": int(quantity), "unit_price": price}

    def _on_their_line(self, error: RecordError) -> RecordError:
        """An error the canonical order found, moved to the body line it is about."""
        found = re.match(r"^#([0-9]+)\.(sku|quantity|unit_price)", error.field)
        if found is not None:
            _, _, _, number = self.lines[int(found.group(1))]
            name = {"sku": "SKU", "quantity": "quantity", "unit_price": "unit price"}[
                found.group(2)
            ]
            return error.model_copy(update={"line": number, "field": name})
        root = error.field.split(".")[0]
        return error.model_copy(
            update={"line": self.line_of(root) if root in _NAMES.values() else error.line}
        )


def _quantity_problem(text: str) -> str | None:
    """Why `text` is not a whole number of units, or None."""
    if re.fullmatch(r"[0-9]+", text):
        return None if int(text) >= 1 else "must be at least 1"
    if re.fullmatch(r"-?[0-9]*[.,][0-9]+", text):
        return f"{text} is not a whole number: quantities are whole units, e.g. 2"
    return f"{text!r} is not a number of units such as 10"
