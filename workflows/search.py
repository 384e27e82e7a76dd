"""Search attributes the order workflow keeps current, so visibility queries replace table scans."""

from decimal import Decimal
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
ORDER_CHANNEL = SearchAttributeKey.for_keyword("OrderChannel")
ORDER_TOTAL = SearchAttributeKey.for_float("OrderTotal")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
AWAITING_APPROVER = SearchAttributeKey.for_keyword("AwaitingApproverTier")
PLACED_AT = SearchAttributeKey.for_datetime("OrderPlacedAt")
"""Set once at placement; a reset or continue-as-new run keeps it (its own start time is later)."""

ALL = (
    ORDER_STATUS,
    CUSTOMER_ID,
    ORDER_CHANNEL,
    ORDER_TOTAL,
    ESCALATION_LEVEL,
    AWAITING_APPROVER,
    PLACED_AT,
)


def order_updates(
    status: str, escalation_level: int, awaiting_tier: str | None, total: Decimal | None
) -> list[SearchAttributeUpdate[Any]]:
    """The upsert that keeps an order's attributes current.

    An attribute with nothing to say is unset (`value_unset`), never set to "": an unset
    attribute matches neither `AwaitingApproverTier = "..."` nor the UI's column, and reads
    back as None.
    """
    updates: list[SearchAttributeUpdate[Any]] = [
        ORDER_STATUS.value_set(status),
        ESCALATION_LEVEL.value_set(escalation_level),
        AWAITING_APPROVER.value_set(awaiting_tier)
        if awaiting_tier
        else AWAITING_APPROVER.value_unset(),
    ]
    if total is not None:
        updates.append(ORDER_TOTAL.value_set(float(total)))
    return updates


_CLI_TYPE = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "INT": "Int",
    "TEXT": "Text",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


def dev_server_flags() -> list[str]:
    """`--search-attribute NAME=Type` flags that register ALL on `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type.name]}"]
    return flags


ORDER_PREFIX = "order-"


def workflow_id(order_id: str) -> str:
    """One workflow per order, forever: the id is how a second start is refused."""
    return f"{ORDER_PREFIX}{order_id}"


def order_id_of(workflow_id: str) -> str:
    """The order behind an order workflow's id."""
    return workflow_id.removeprefix(ORDER_PREFIX)
