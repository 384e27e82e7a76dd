"""CLI fixtures: an isolated ORDERFLOW_HOME and free ports for each test."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from starter.stack import free_port, free_ports
from tests.payload_keys import TEST_PAYLOAD_ENV

__all__ = ["free_port"]  # tests import it from here

ORDERFLOW = str(Path(sys.executable).parent / "orderflow")


def wait_until_listening(
    process: subprocess.Popen[Any], port: int, what: str, timeout: float = 30
) -> None:
    """Until `process` listens on `port`; fails with its error output if it exits first."""
    from starter.stack import port_open

    deadline = time.monotonic() + timeout
    while not port_open(port):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"{what} did not come up"
        time.sleep(0.1)


def orderflow(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORDERFLOW, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    temporal, ui, codec = free_ports(3)
    env.update(
        {
            "ORDERFLOW_HOME": str(tmp_path / "state"),
            "ORDERFLOW_TEMPORAL_PORT": str(temporal),
            "ORDERFLOW_TEMPORAL_UI_PORT": str(ui),
            "ORDERFLOW_CODEC_PORT": str(codec),
            "ORDERFLOW_CARRIER_LATENCY_MS": "1-5",
            "COLUMNS": "200",
            **TEST_PAYLOAD_ENV,  # the session client's key: CLI and in-process worker agree
        }
    )
    return env


async def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`orderflow` from an async test: the in-process worker keeps running meanwhile."""
    return await asyncio.to_thread(orderflow, *args, env=env, stdin=stdin)
