"""`orderflow worker` as a child process that tests SIGKILL: its environment, start and kill."""

import asyncio
import os
import sys
from pathlib import Path

from temporalio.client import Client

from workers.codec import payload_env
from workers.settings import Settings

ORDERFLOW = str(Path(sys.executable).parent / "orderflow")
Process = asyncio.subprocess.Process


def worker_env(client: Client, settings: Settings, home: Path, **extra: str) -> dict[str, str]:
    """A worker on the session's Temporal, task queue and database, with quick carriers and the
    client's payload key; none of the caller's own ORDERFLOW_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_HOME=str(home),
        ORDERFLOW_TEMPORAL_ADDRESS=client.service_client.config.target_host,
        ORDERFLOW_TASK_QUEUE=settings.task_queue,
        ORDERFLOW_DATABASE_URL=settings.resolved_database_url,
        ORDERFLOW_CARRIER_LATENCY_MS="1-5",
        **extra,
        **payload_env(settings),
    )
    return env


async def start_worker(env: dict[str, str], log: Path) -> Process:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            ORDERFLOW, "worker", env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )


async def kill(process: Process | None) -> None:
    """SIGKILL: no graceful shutdown, no claim released, nothing reported."""
    if process is not None and process.returncode is None:
        process.kill()
    if process is not None:
        await process.wait()
