"""Search attributes the order workflow keeps current, so visibility queries replace table scans."""

from temporalio.common import SearchAttributeKey

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
