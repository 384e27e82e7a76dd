"""The embedded server starts even when a port its CLI picked for itself is taken meanwhile."""

import socket
from pathlib import Path

import pytest

from starter import stack
from starter.stack import StackError, dev_server, free_ports, port_open
from workers.settings import Settings


def settings_for(tmp_path: Path) -> Settings:
    grpc, ui = free_ports(2)
    return Settings(home=tmp_path / "state", temporal_port=grpc, temporal_ui_port=ui)


def held_port() -> socket.socket:
    """A port something else listens on (the process that won the race for it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_port_taken_between_the_clis_choice_and_its_bind_costs_one_more_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)
    command = stack.dev_server_command
    calls: list[int] = []
    with held_port() as taken:
        busy = taken.getsockname()[1]

        def first_on_a_taken_port(settings: Settings, *, ui: bool = True) -> list[str]:
            calls.append(1)  # the first start's HTTP API port is one somebody else has
            extra = ["--http-port", str(busy)] if len(calls) == 1 else []
            return [*command(settings, ui=ui), *extra]

        monkeypatch.setattr(stack, "dev_server_command", first_on_a_taken_port)
        with dev_server(settings, ui=False):
            assert port_open(settings.temporal_port)
        assert len(calls) == 2
        assert (
            f"127.0.0.1:{busy}: bind: address already in use"
            in (settings.home / "temporal.log").read_text()
        )
    assert not port_open(settings.temporal_port)  # stopped at the end of the block


def test_a_port_taken_on_every_start_is_said_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)
    command = stack.dev_server_command
    with held_port() as taken:
        busy = taken.getsockname()[1]
        monkeypatch.setattr(
            stack,
            "dev_server_command",
            lambda settings, *, ui=True: [*command(settings, ui=ui), "--http-port", str(busy)],
        )
        with pytest.raises(StackError) as error, dev_server(settings, ui=False):
            pass
    assert str(error.value) == (
        f"temporal server exited: port {busy} was taken; see {settings.home / 'temporal.log'}"
    )
