"""Where a worker's log goes, and how an expected business failure is logged: one line.

The SDK logs every failed activity at WARNING with its traceback. A typed, non-retryable
`ApplicationError` (an unknown SKU, a duplicate, a declined payment...) is an outcome the
workflow handles, not a fault: `BusinessFailures` turns its record into one INFO line
("order-x validate_order: InvalidOrder: unknown SKU KB-999 (business failure, not retried)").
Every other failure (a bug, a database that is down) keeps its level and its traceback.
"""

import logging
import sys
from pathlib import Path

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


def setup_logging(file: Path | None = None, level: int = logging.INFO) -> None:
    """Log to `file` (the demo: its terminal stays readable) or to standard error (a worker).

    The filter sits on the SDK's activity logger, before any handler sees the record, so a
    business failure is an INFO line wherever the log goes.
    """
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    install_filter()


def install_filter() -> None:
    """Put `BusinessFailures` on the SDK's activity logger (idempotent)."""
    logger = logging.getLogger("temporalio.activity")
    if not any(isinstance(f, BusinessFailures) for f in logger.filters):
        logger.addFilter(BusinessFailures())
