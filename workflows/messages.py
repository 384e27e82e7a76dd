"""What every order message handler shares: payload parsing and one-line refusals.

Handlers take their payload as a `RawValue` and parse it here, so a missing payload (an
operator's `temporal workflow signal --name ship` with no input) gets the model's defaults and
a malformed one becomes a one-line refusal instead of a failed workflow task. Anything a
handler raises leaves it as an `ApplicationError`: any other exception would fail the workflow
task on every retry and wedge the order.
"""

import contextlib
from collections.abc import Iterator
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.errors import refused as typed_refusal
    from domain.commands import CommandRefused

M = TypeVar("M", bound=BaseModel)

NO_PAYLOAD = RawValue(Payload())
"""The default of every handler argument: the sender sent no payload at all."""


def refused(error: CommandRefused | str) -> ApplicationError:
    """A one-line refusal, as the sender of an Update sees it (never retried)."""
    return typed_refusal(str(error), "CommandRefused")


def parse(raw: RawValue, model: type[M], what: str) -> M:
    """The payload as `model`; no payload at all means the model's defaults.

    Raises:
        ApplicationError: "InvalidCommand", one line naming the first problem.
    """
    try:
        if not raw.payload.metadata:
            return model()
        value: M = workflow.payload_converter().from_payload(raw.payload, model)
        return value
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        problem = f"{where}: {first['msg']}"
    except Exception as error:  # undecodable JSON, wrong encoding, ...
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise ApplicationError(
        f"invalid {what}: {problem}", type="InvalidCommand", non_retryable=True
    ) from None


def parse_text(raw: RawValue, what: str) -> str:
    """A payload that is one non-empty string (an RMA id).

    Raises:
        ApplicationError: "InvalidCommand" when missing, empty or not a string.
    """
    value: object = None
    with contextlib.suppress(Exception):
        if raw.payload.metadata:
            value = workflow.payload_converter().from_payload(raw.payload, str)
    if not isinstance(value, str) or not value.strip():
        raise ApplicationError(
            f"invalid {what}: give it as a non-empty string",
            type="InvalidCommand",
            non_retryable=True,
        )
    return value.strip()


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Inside a validator or handler: a `CommandRefused` becomes the sender's one-line answer;
    any other mistake of ours becomes an `ApplicationError` too (logged), never a task failure.
    """
    try:
        yield
    except ApplicationError:
        raise
    except CommandRefused as error:
        raise refused(error) from None
    except Exception as error:
        workflow.logger.exception("order message handler failed")
        raise ApplicationError(
            f"internal error handling the message: {type(error).__name__}: {error}",
            type="InternalError",
            non_retryable=True,
        ) from None
