"""Money kept on a return: the restocking fee by disposition and reason, and the shipping refund.

Reasons stay free text on `ReturnRequest` (`domain.returns` is unchanged); `reason_code`
reads a code out of the text with the policy's phrases ("arrived scratched" -> defective).
A person choosing the code would be better; until returns carry one, the phrases are data.
The fee is a percentage of the net price of the inspected units (`Disposition` decides
which), waived for the seller's fault (defective, wrong item). On a credit note the fee
reduces the credited net of its line, so the VAT kept follows the line's rate.

Not modelled: an EU consumer's 14-day withdrawal right allows no restocking fee (only a
loss in value) and refunds standard delivery; apply a zero policy to those returns.
"""

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.money import round_half_up
from domain.returns import Disposition, InspectionLine

OTHER = "other"


class RestockingPolicy(BaseModel):
    """Restocking fee percentages and the reasons that waive it or refund shipping (data)."""

    percent_by_disposition: dict[Disposition, Decimal] = Field(
        default_factory=lambda: {
            Disposition.RESTOCK: Decimal(10),
            Disposition.REFURBISH: Decimal(15),
            Disposition.DISPOSE: Decimal(25),
        }
    )
    percent_by_reason: dict[str, dict[Disposition, Decimal]] = Field(
        default_factory=dict, description="reason code -> disposition -> % (overrides)"
    )
    waived_reasons: list[str] = Field(default_factory=lambda: ["defective", "wrong_item"])
    shipping_refund_reasons: list[str] = Field(default_factory=lambda: ["defective"])
    reasons: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "defective": [
                "defective",
                "faulty",
                "broken",
                "damaged",
                "scratched",
                "not working",
                "does not work",
            ],
            "wrong_item": ["wrong item", "wrong product", "not what i ordered"],
            "changed_mind": ["changed mind", "changed my mind", "no longer needed"],
        },
        description="reason code -> phrases that name it in a free-text reason (first wins)",
    )


def _words(text: str) -> str:
    return " ".join(re.sub(r"[_\-]", " ", text.lower()).split())


def reason_code(reason: str, policy: RestockingPolicy) -> str:
    """The code of a free-text reason: the code itself ("wrong_item"), or the first code one of
    whose phrases occurs in it as whole words; "other" when none does."""
    text = _words(reason)
    for code, phrases in policy.reasons.items():
        for phrase in [code, *phrases]:
            if re.search(rf"\b{re.escape(_words(phrase))}\b", text):
                return code
    return OTHER


def restocking_percent(reason: str, disposition: Disposition, policy: RestockingPolicy) -> Decimal:
    """The fee in % of the units' net price: 0 for a waived reason, else by reason and
    disposition, else by disposition."""
    code = reason_code(reason, policy)
    if code in policy.waived_reasons:
        return Decimal(0)
    by_reason = policy.percent_by_reason.get(code, {})
    return by_reason.get(disposition, policy.percent_by_disposition.get(disposition, Decimal(0)))


def restocking_fees(
    inspected: Sequence[InspectionLine],
    unit_net: Mapping[str, Decimal],
    reason: str,
    policy: RestockingPolicy,
    currency: str,
) -> dict[str, Decimal]:
    """The net fee kept per SKU, rounded half up once per SKU.

    Args:
        inspected: Inspection's verdicts (several dispositions of one SKU add up).
        unit_net: The net unit price each SKU was invoiced at.
        reason: The return's reason as the customer gave it.
        policy: The restocking policy.
        currency: The invoice's currency.

    Raises:
        KeyError: a SKU without an invoiced price.
    """
    exact: dict[str, Decimal] = {}
    for line in inspected:
        percent = restocking_percent(reason, line.disposition, policy)
        fee = unit_net[line.sku] * line.quantity * percent / 100
        exact[line.sku] = exact.get(line.sku, Decimal(0)) + fee
    return {sku: round_half_up(fee, currency) for sku, fee in exact.items()}


def whole_order_returned(invoiced: Mapping[str, int], returned: Mapping[str, int]) -> bool:
    """Every invoiced unit is back (`returned` counts every RMA of the order, this one too)."""
    return all(returned.get(sku, 0) >= quantity for sku, quantity in invoiced.items())


def refunds_shipping(reasons: Sequence[str], whole_order: bool, policy: RestockingPolicy) -> bool:
    """Shipping is refunded when the whole order came back and every return's reason (one per
    RMA of the order) is a shipping-refund reason (default: defective)."""
    codes = [reason_code(reason, policy) for reason in reasons]
    return whole_order and bool(codes) and all(c in policy.shipping_refund_reasons for c in codes)
