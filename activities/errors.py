"""Business failures of activities: typed, non-retryable, the reason in one line."""

from temporalio.exceptions import ApplicationError


def refused(message: str, error_type: str) -> ApplicationError:
    """A failure that retrying cannot fix; the workflow sees `error_type` as the kind."""
    return ApplicationError(message, type=error_type, non_retryable=True)
