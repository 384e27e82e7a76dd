"""Where a worker's log goes, how its lines look, and how a business failure is logged.

The SDK logs every failed activity at WARNING with its traceback. A typed, non-retryable
`ApplicationError` (an unknown SKU, a duplicate, a declined payment...) is an outcome the
workflow handles, not a fault: `BusinessFailures` turns its record into one INFO line
("order-x validate_order: InvalidOrder: unknown SKU KB-999 (business failure, not retried)").
Every other failure (a bug, a database that is down) keeps its level and its traceback.

Every line logged for an order carries its order id, workflow id and run id (`OrderContext`):
from the SDK's `temporal_activity` / `temporal_workflow` record fields (activity.logger,
workflow.logger), else from the activity or workflow the line is logged in. ORDERFLOW_LOG_FORMAT
picks the rendering: "text" (the line, then order_id=... workflow_id=... run_id=...
activity=... attempt=...) or "json" (one object a line, the same keys, plus "exception").
"""

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from workflows.search import ORDER_PREFIX, order_id_of

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("order_id", "workflow_id", "run_id", "workflow_type", "activity", "attempt")
"""What `OrderContext` may put on a record (as `record.orderflow`), in the order shown."""
LogFormat = Literal["text", "json"]


def is_business_failure(error: BaseException | None) -> bool:
    """A typed failure retrying cannot fix: the workflow expects it and records the reason."""
    return isinstance(error, ApplicationError) and (
        error.non_retryable or error.category == ApplicationErrorCategory.BENIGN
    )


class BusinessFailures(logging.Filter):
    """Rewrites an activity's business failure as one INFO line without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not is_business_failure(error):
            return True
        assert isinstance(error, ApplicationError)
        where = getattr(record, "temporal_activity", None) or {}
        subject = " ".join(str(where[k]) for k in ("workflow_id", "activity_type") if where.get(k))
        kind = f"{error.type}: " if error.type else ""
        record.msg = f"{subject + ': ' if subject else ''}{kind}{error.message} " + (
            "(business failure, not retried)"
        )
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


class OrderContext(logging.Filter):
    """Puts the order, workflow and run a line belongs to on the record (`record.orderflow`).

    A handler's filter, so it sees the lines of every logger (the SDK's, ours, libraries')."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.orderflow = context_of(record)
        return True


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """order_id, workflow_id, run_id (and workflow type, activity, attempt) of a line, if any."""
    fields: dict[str, Any] = {}
    act: Mapping[str, Any] | None = getattr(record, "temporal_activity", None)
    flow: Mapping[str, Any] | None = getattr(record, "temporal_workflow", None)
    if act is None and flow is None:
        act, flow = _running_now()
    if act:
        fields = {
            "workflow_id": act.get("workflow_id"),
            "run_id": act.get("workflow_run_id"),
            "workflow_type": act.get("workflow_type"),
            "activity": act.get("activity_type"),
            "attempt": act.get("attempt"),
        }
    elif flow:
        fields = {
            "workflow_id": flow.get("workflow_id"),
            "run_id": flow.get("run_id"),
            "workflow_type": flow.get("workflow_type"),
        }
    workflow_id = fields.get("workflow_id")
    if isinstance(workflow_id, str) and workflow_id.startswith(ORDER_PREFIX):
        fields["order_id"] = order_id_of(workflow_id)
    return {k: fields[k] for k in FIELDS if fields.get(k) is not None}


def _running_now() -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """A line logged by plain `logging` inside an activity or a workflow: its context."""
    if activity.in_activity():
        info = activity.info()
        return {
            "workflow_id": info.workflow_id,
            "workflow_run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }, None
    if workflow.in_workflow():
        winfo = workflow.info()
        return None, {
            "workflow_id": winfo.workflow_id,
            "run_id": winfo.run_id,
            "workflow_type": winfo.workflow_type,
        }
    return None, None


class TextFormatter(logging.Formatter):
    """FORMAT, then the line's context as key=value pairs."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = getattr(record, "orderflow", None) or context_of(record)
        pairs = " ".join(f"{k}={_quoted(v)}" for k, v in context.items())
        return f"{line} {pairs}" if pairs else line


def _quoted(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **(getattr(record, "orderflow", None) or context_of(record)),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter ORDERFLOW_LOG_FORMAT names."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def setup_logging(
    file: Path | None = None, level: int = logging.INFO, log_format: LogFormat = "text"
) -> None:
    """Log to `file` (the demo: its terminal stays readable) or to standard error (a worker).

    The filter sits on the SDK's activity logger, before any handler sees the record, so a
    business failure is an INFO line wherever the log goes. The handler puts each line's order
    context on it; the SDK's own copy of that context in the message text ("... ({'activity_id':
    ...})") is turned off, since the formatter renders it.
    """
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(OrderContext())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    install_filter()
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


def install_filter() -> None:
    """Put `BusinessFailures` on the SDK's activity logger (idempotent)."""
    logger = logging.getLogger("temporalio.activity")
    if not any(isinstance(f, BusinessFailures) for f in logger.filters):
        logger.addFilter(BusinessFailures())
