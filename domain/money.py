"""Money arithmetic: Decimal amounts quantised to the currency's minor unit."""

from decimal import ROUND_HALF_EVEN, Decimal

# Minor-unit exponent per ISO 4217 currency we trade in; anything else is refused at validation.
CURRENCY_EXPONENT: dict[str, int] = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "JPY": 0}


def quantum(currency: str) -> Decimal:
    """Smallest amount of `currency` (0.01 for EUR, 1 for JPY)."""
    return Decimal(1).scaleb(-CURRENCY_EXPONENT[currency])


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, banker's rounding."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def has_valid_precision(amount: Decimal, currency: str) -> bool:
    """True when `amount` has no more decimals than the currency allows."""
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= CURRENCY_EXPONENT.get(currency, 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount in the currency's minor unit (cents): what ledgers store, exactly."""
    return int(amount.scaleb(CURRENCY_EXPONENT[currency]))


def from_minor(minor: int, currency: str) -> Decimal:
    """Back from minor units to a Decimal amount."""
    return Decimal(minor).scaleb(-CURRENCY_EXPONENT[currency])
