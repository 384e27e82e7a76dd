"""Which command each stage of an order accepts: the one table to read for "can I still edit?".

The stage is where the order's *workflow* is, not the status customers see: an order that was
just approved still shows VALIDATED while it is authorised and its stock is held, but its stage
is already FULFILMENT, so an edit is refused from the moment the last hold is released. Every
message handler of the order workflow asks `check` first; nothing else decides acceptance.
"""

from enum import StrEnum

from domain.commands import CommandRefused


class Stage(StrEnum):
    """Where the order's workflow is; each stage accepts a fixed set of commands."""

    INTAKE = "INTAKE"
    """Being validated and assessed for holds (again after every edit); nothing is held."""
    APPROVAL = "APPROVAL"
    """Waiting for approvers; nothing is authorised or held."""
    FULFILMENT = "FULFILMENT"
    """Money authorised, stock being held, routed, booked or backordered; nothing shipped."""
    IN_TRANSIT = "IN_TRANSIT"
    """A parcel has left the warehouse: from here on goods come back only through a return."""
    PAYMENT_HOLD = "PAYMENT_HOLD"
    """A lapsed card authorisation could not be renewed: finance releases (try the card
    again) or rejects (what was delivered is billed, the rest is not shipped)."""
    RETURNS = "RETURNS"
    """Delivered and invoiced; the return window is open."""
    STOPPING = "STOPPING"
    """A cancel or a rejection was accepted; compensations run, nothing else is taken."""
    CLOSED = "CLOSED"
    """Finished: nothing changes the order any more."""


class Command(StrEnum):
    """Everything a person or an outside system can send to a running order."""

    EDIT = "edit"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    SHIP = "ship"
    DELIVER = "deliver"
    LOST = "lost"
    STOCK_ARRIVED = "stock_arrived"
    RETURN = "return"
    RECEIVE_RETURN = "receive_return"
    INSPECT_RETURN = "inspect_return"


_PARCEL_NOTICES = frozenset({Command.SHIP, Command.DELIVER, Command.LOST})

ACCEPTS: dict[Stage, frozenset[Command]] = {
    Stage.INTAKE: frozenset({Command.EDIT, Command.CANCEL}),
    Stage.APPROVAL: frozenset({Command.EDIT, Command.APPROVE, Command.REJECT, Command.CANCEL}),
    Stage.FULFILMENT: frozenset({Command.CANCEL, Command.STOCK_ARRIVED} | _PARCEL_NOTICES),
    Stage.IN_TRANSIT: frozenset({Command.STOCK_ARRIVED} | _PARCEL_NOTICES),
    Stage.PAYMENT_HOLD: frozenset({Command.APPROVE, Command.REJECT}),
    Stage.RETURNS: frozenset({Command.RETURN, Command.RECEIVE_RETURN, Command.INSPECT_RETURN}),
    # A parcel that leaves after a cancel was accepted is still a fact: it is recorded as an
    # exception for a person (its goods are out, not released back into stock).
    Stage.STOPPING: frozenset({Command.SHIP}),
    Stage.CLOSED: frozenset(),
}
"""The table: what each stage accepts. Anything else is refused with `refusal`'s message."""


def accepts(stage: Stage, command: Command) -> bool:
    """True when `command` is taken at `stage`."""
    return command in ACCEPTS[stage]


def check(stage: Stage, command: Command, *, stopping_because: str = "") -> None:
    """Refuse a command this stage does not take, with the reason in one line.

    Raises:
        CommandRefused: the command is not accepted at this stage.
    """
    if not accepts(stage, command):
        raise CommandRefused(refusal(stage, command, stopping_because))


def refusal(stage: Stage, command: Command, stopping_because: str = "") -> str:
    """Why `command` is not taken at `stage`, said so the sender knows what to do instead."""
    if stage == Stage.STOPPING:
        why = stopping_because or "cancelled"
        return f"the order is being stopped ({why}); nothing else changes it"
    if stage == Stage.CLOSED:
        return "the order is closed for changes"
    specific = _SPECIFIC.get((stage, command))
    if specific:
        return specific
    return _GENERAL.get(command, f"{command.value} is not possible now") + f" (stage {stage.value})"


_HELD = (
    "edits are possible until the order is approved and its stock held; "
    "cancel it and place a new order instead"
)
_SHIPPED = "it has shipped and can no longer be cancelled; open a return instead (orderflow return)"
_SPECIFIC: dict[tuple[Stage, Command], str] = {
    (Stage.INTAKE, Command.APPROVE): "the order is being validated; its holds are assessed next",
    (Stage.INTAKE, Command.REJECT): "the order is being validated; its holds are assessed next",
    (Stage.FULFILMENT, Command.EDIT): _HELD,
    (Stage.IN_TRANSIT, Command.EDIT): _HELD,
    (Stage.RETURNS, Command.EDIT): _HELD,
    (Stage.IN_TRANSIT, Command.CANCEL): _SHIPPED,
    (Stage.RETURNS, Command.CANCEL): _SHIPPED,
    (Stage.PAYMENT_HOLD, Command.EDIT): _HELD,
    (Stage.PAYMENT_HOLD, Command.CANCEL): (
        "the order is on a payment hold: finance rejects the hold to stop what has not "
        "shipped (orderflow reject ORDER --by ... --reason ...)"
    ),
}
_GENERAL: dict[Command, str] = {
    Command.APPROVE: "nothing to approve: the order is not waiting for approval",
    Command.REJECT: "nothing to reject: the order is not waiting for approval",
    Command.SHIP: "nothing to ship yet: no shipment is booked",
    Command.DELIVER: "nothing to deliver yet: no shipment is booked",
    Command.LOST: "no parcel is on its way",
    Command.STOCK_ARRIVED: "the order is not waiting for stock",
    Command.RETURN: "returns open once the order is delivered and invoiced",
    Command.RECEIVE_RETURN: "no return is open",
    Command.INSPECT_RETURN: "no return is open",
    Command.EDIT: _HELD,
    Command.CANCEL: _SHIPPED,
}
