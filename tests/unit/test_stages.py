"""The stage table: which command each stage of an order takes, and what the refusals say."""

import pytest

from domain.commands import CommandRefused
from domain.stages import ACCEPTS, Command, Stage, accepts, check, refusal


def test_every_stage_is_in_the_table() -> None:
    assert set(ACCEPTS) == set(Stage)


def test_edits_end_when_the_order_leaves_approval() -> None:
    assert [s for s in Stage if accepts(s, Command.EDIT)] == [Stage.INTAKE, Stage.APPROVAL]
    with pytest.raises(CommandRefused, match="until the order is approved"):
        check(Stage.FULFILMENT, Command.EDIT)


def test_approvals_only_while_waiting_for_them() -> None:
    holds = [Stage.APPROVAL, Stage.PAYMENT_HOLD]
    assert [s for s in Stage if accepts(s, Command.APPROVE)] == holds
    assert [s for s in Stage if accepts(s, Command.REJECT)] == holds
    with pytest.raises(CommandRefused, match="being validated"):
        check(Stage.INTAKE, Command.APPROVE)


def test_a_payment_hold_takes_only_finance_decisions() -> None:
    assert ACCEPTS[Stage.PAYMENT_HOLD] == {Command.APPROVE, Command.REJECT}
    with pytest.raises(CommandRefused, match="finance rejects the hold"):
        check(Stage.PAYMENT_HOLD, Command.CANCEL)
    with pytest.raises(CommandRefused, match="until the order is approved"):
        check(Stage.PAYMENT_HOLD, Command.EDIT)


def test_cancel_is_refused_once_anything_shipped_and_points_to_a_return() -> None:
    taken = [s for s in Stage if accepts(s, Command.CANCEL)]
    assert taken == [Stage.INTAKE, Stage.APPROVAL, Stage.FULFILMENT]
    for stage in (Stage.IN_TRANSIT, Stage.RETURNS):
        with pytest.raises(CommandRefused, match="open a return"):
            check(stage, Command.CANCEL)


def test_a_stopping_order_takes_only_the_fact_that_a_parcel_left() -> None:
    assert ACCEPTS[Stage.STOPPING] == {Command.SHIP}
    message = refusal(Stage.STOPPING, Command.APPROVE, "cancelled by cs: too late")
    assert (
        message == "the order is being stopped (cancelled by cs: too late); nothing else changes it"
    )


def test_a_closed_order_takes_nothing() -> None:
    assert not ACCEPTS[Stage.CLOSED]
    for command in Command:
        assert refusal(Stage.CLOSED, command) == "the order is closed for changes"


def test_returns_only_after_delivery_and_invoice() -> None:
    for command in (Command.RETURN, Command.RECEIVE_RETURN, Command.INSPECT_RETURN):
        assert [s for s in Stage if accepts(s, command)] == [Stage.RETURNS]
    with pytest.raises(CommandRefused, match="delivered and invoiced"):
        check(Stage.FULFILMENT, Command.RETURN)


def test_every_refusal_is_one_line() -> None:
    for stage in Stage:
        for command in Command:
            if not accepts(stage, command):
                text = refusal(stage, command, "why")
                assert text and "\n" not in text
