"""Money arithmetic: Decimal amounts quantised to the currency's minor unit."""

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

# Minor-unit exponent per ISO 4217 currency we trade in; anything else is refused at validation.
CURRENCY_EXPONENT: dict[str, int] = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "JPY": 0}


def quantum(currency: str) -> Decimal:
    """Smallest amount of `currency` (0.01 for EUR, 1 for JPY)."""
    return Decimal(1).scaleb(-CURRENCY_EXPONENT[currency])


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, banker's rounding."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def round_half_up(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, commercial rounding (0.005 -> 0.01).

    What tax authorities expect for VAT amounts on invoices (and what finance calls
    rounding); used for taxes, charges and fees on invoices and credit notes.
    """
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


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


def allocate(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split `amount` in proportion to `weights`, to the minor unit, adding up exactly.

    Largest remainder: every share is rounded down, then the minor units left over go to the
    shares that lost most (ties: the earlier one). All weights zero splits evenly.

    Raises:
        ValueError: a negative amount or weight, or `amount` finer than the currency allows.
    """
    if amount < 0 or any(weight < 0 for weight in weights):
        raise ValueError("allocate splits a non-negative amount by non-negative weights")
    if not has_valid_precision(amount, currency):
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    if not weights:
        return []
    if sum(weights) == 0:
        weights = [Decimal(1)] * len(weights)
    total = sum(weights, Decimal(0))
    minor = to_minor(amount, currency)
    exact = [minor * weight / total for weight in weights]
    shares = [int(share) for share in exact]  # int() truncates: these are non-negative
    leftover = minor - sum(shares)
    by_loss = sorted(range(len(exact)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_loss[:leftover]:
        shares[i] += 1
    return [from_minor(share, currency) for share in shares]
