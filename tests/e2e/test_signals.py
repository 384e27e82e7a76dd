"""A process that starts another stops it on SIGTERM (a supervisor) as on SIGINT (Ctrl-C)."""

import signal
import subprocess
import time
import uuid

import pytest
from temporalio.client import Client

from starter.stack import port_open
from tests.e2e.conftest import ORDERFLOW, wait_until_listening


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_dev_stops_its_temporal_server_on_sigterm_and_sigint(
    cli_env: dict[str, str], stop_with: signal.Signals
) -> None:
    port = int(cli_env["ORDERFLOW_TEMPORAL_PORT"])
    dev = subprocess.Popen(
        [ORDERFLOW, "dev"], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_until_listening(dev, port, "the embedded server", timeout=60)
        dev.send_signal(stop_with)
        assert dev.wait(timeout=30) in (0, 130)
        deadline = time.monotonic() + 20
        while port_open(port):  # the server child is gone with it, not left holding the port
            assert time.monotonic() < deadline, f"port {port} still served after {stop_with}"
            time.sleep(0.2)
    finally:
        if dev.poll() is None:
            dev.kill()


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_worker_shuts_down_gracefully_on_sigterm_and_sigint(
    client: Client, cli_env: dict[str, str], stop_with: signal.Signals
) -> None:
    """A supervisor's SIGTERM (docker stop, systemd) ends a worker as promptly as Ctrl-C; it
    used to hang in shutdown until killed."""
    env = {
        **cli_env,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": f"signals-{uuid.uuid4().hex[:8]}",
    }
    worker = subprocess.Popen(
        [ORDERFLOW, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert worker.stdout is not None
        for line in worker.stdout:  # polling once it says so
            if b"worker on task queue" in line:
                break
        else:
            raise AssertionError(f"the worker did not start (exit {worker.wait()})")
        worker.send_signal(stop_with)
        assert worker.wait(timeout=30) in (0, 130)
    finally:
        if worker.poll() is None:
            worker.kill()


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_an_interrupted_bench_says_so_and_stops_its_server_and_workers(
    cli_env: dict[str, str], stop_with: signal.Signals
) -> None:
    port = int(cli_env["ORDERFLOW_TEMPORAL_PORT"])
    bench = subprocess.Popen(
        [ORDERFLOW, "bench", "--orders", "600"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its children are ours to find: the same session
    )
    try:
        wait_until_listening(bench, port, "the bench's embedded server", timeout=60)
        time.sleep(3)  # its workers are starting or running workflows now
        bench.send_signal(stop_with)
        _, err = bench.communicate(timeout=60)
        assert bench.returncode == 130
        assert err.decode().strip().splitlines() == [
            "interrupted: stopped (with what the command had started)"
        ]
        deadline = time.monotonic() + 20
        while port_open(port) or _session_alive(bench.pid):
            assert time.monotonic() < deadline, "the bench left its server or workers running"
            time.sleep(0.2)
    finally:
        if bench.poll() is None:
            bench.kill()


def _session_alive(session: int) -> bool:
    """Any process left in the bench's session (its server, its workers)."""
    out = subprocess.run(["ps", "-eo", "sid="], capture_output=True, text=True).stdout
    return any(line.strip() == str(session) for line in out.splitlines())
