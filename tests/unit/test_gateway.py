"""The simulated card gateway behaves like a processor: same key, same answer; declines above
the card's limit; and refuses a capture once the authorisation has lapsed."""

from datetime import timedelta
from decimal import Decimal

import pytest

from activities.payments import AuthorizationLapsed, GatewayDeclined, SimulatedGateway


def test_a_capture_within_the_authorisations_life_is_taken() -> None:
    gateway = SimulatedGateway(latency_ms=(0, 0), authorization_valid_for=timedelta(hours=1))
    auth = gateway.authorize("o-1/authorize", Decimal("10.00"), "EUR")
    again = gateway.authorize("o-1/authorize", Decimal("10.00"), "EUR")
    assert auth.startswith("auth_") and auth.split(".")[0] == again.split(".")[0]  # same key
    assert gateway.capture("o-1/capture", auth, Decimal("10.00")).startswith("cap_")


def test_a_capture_after_the_authorisation_lapsed_is_refused() -> None:
    gateway = SimulatedGateway(latency_ms=(0, 0), authorization_valid_for=timedelta(0))
    auth = gateway.authorize("o-2/authorize", Decimal("10.00"), "EUR")
    with pytest.raises(AuthorizationLapsed, match="lapsed"):
        gateway.capture("o-2/capture", auth, Decimal("10.00"))


def test_an_authorisation_of_another_processor_has_no_known_lapse() -> None:
    gateway = SimulatedGateway(latency_ms=(0, 0), authorization_valid_for=timedelta(0))
    assert gateway.capture("o-3/capture", "auth_0123456789abcdef", Decimal("1")).startswith("cap_")


def test_above_the_cards_limit_is_declined() -> None:
    gateway = SimulatedGateway(latency_ms=(0, 0), decline_above=Decimal("100"))
    with pytest.raises(GatewayDeclined, match="above the card's limit"):
        gateway.authorize("o-4/authorize", Decimal("100.01"), "EUR")
