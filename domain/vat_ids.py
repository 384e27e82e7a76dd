"""EU VAT identification numbers: the format check per member state (no VIES lookup).

A VAT id that passes here is well formed for its country; it is NOT known to be registered.
Confirming that takes a VIES lookup (ec.europa.eu/taxation_customs/vies), which is I/O and
belongs in an activity; until one exists, a well-formed id is what the reverse charge needs.
"""

import re

EU_MEMBER_STATES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip
"""ISO 3166-1 alpha-2 codes of the 27 EU member states (Greece is GR here, EL on VAT ids)."""

# What follows the two-letter prefix, per the Commission's VIES format table.
_FORMATS: dict[str, str] = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[0-9A-Z]\d{7}[0-9A-Z]",
    "FI": r"\d{8}",
    "FR": r"[0-9A-HJ-NP-Z]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d[0-9A-Z+*]\d{5}[A-W][A-I]?",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
}
_PATTERNS = {prefix: re.compile(f"(?:{body})", re.ASCII) for prefix, body in _FORMATS.items()}
_SEPARATORS = re.compile(r"[\s.\-]")


def normalise_vat_id(raw: str) -> str:
    """Upper case without spaces, dots or dashes: "fr 40 303 265 045" -> "FR40303265045"."""
    return _SEPARATORS.sub("", raw).upper()


def vat_id_country(vat_id: str | None) -> str | None:
    """The member state (ISO code, GR for EL) of a well-formed EU VAT id, else None."""
    if not vat_id:
        return None
    value = normalise_vat_id(vat_id)
    prefix, body = value[:2], value[2:]
    pattern = _PATTERNS.get(prefix)
    if pattern is None or pattern.fullmatch(body) is None:
        return None
    return "GR" if prefix == "EL" else prefix


def is_valid_vat_id(vat_id: str | None, country: str | None = None) -> bool:
    """True when `vat_id` is well formed (and, given `country`, belongs to that member state).

    A format check only, not a VIES lookup: see the module docstring.
    """
    found = vat_id_country(vat_id)
    return found is not None and (country is None or found == country.strip().upper())
