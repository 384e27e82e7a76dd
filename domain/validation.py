"""Order validation rules that need no database: addresses, fingerprints, line limits."""

import hashlib
import re

from domain.order import Address, Order

# Postal code shapes per country; a country missing here is checked for non-emptiness only.
POSTAL_CODE = {
    "NL": r"\d{4} ?[A-Z]{2}",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "ES": r"\d{5}",
    "IT": r"\d{5}",
    "BE": r"\d{4}",
    "AT": r"\d{4}",
    "CH": r"\d{4}",
    "DK": r"\d{4}",
    "PT": r"\d{4}-\d{3}",
    "PL": r"\d{2}-\d{3}",
    "SE": r"\d{3} ?\d{2}",
    "US": r"\d{5}(-\d{4})?",
    "CA": r"[A-Z]\d[A-Z] ?\d[A-Z]\d",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}",
    "IE": r"[A-Z]\d{2} ?[A-Z\d]{4}",
}


def address_problems(address: Address, shippable_countries: set[str]) -> list[str]:
    """Reasons the address cannot be shipped to (empty when it is fine); see `address_warnings`."""
    problems = []
    if address.country not in shippable_countries:
        problems.append(f"we do not ship to country {address.country}")
    pattern = POSTAL_CODE.get(address.country)
    if pattern and not re.fullmatch(pattern, address.postal_code.upper()):
        problems.append(f"postal code {address.postal_code!r} is not valid for {address.country}")
    return problems


def address_warnings(address: Address) -> list[str]:
    """Doubts about an address a person should look at (an ADDRESS hold, not a rejection)."""
    warnings = []
    if not re.search(r"\d", address.street):
        warnings.append(f"street {address.street!r} has no house number")
    return warnings


def fingerprint(order: Order) -> str:
    """Identity of an order's content, to catch the same order placed twice under new ids."""
    lines = ";".join(
        f"{line.sku}x{line.quantity}@{line.unit_price}"
        for line in sorted(order.lines, key=lambda line: line.sku)
    )
    to = order.ship_to
    where = "|".join(
        part.strip().lower() for part in (to.name, to.street, to.postal_code, to.country)
    )
    text = f"{order.customer_id}|{order.currency}|{lines}|{where}|{order.purchase_order or ''}"
    return hashlib.sha256(text.encode()).hexdigest()
