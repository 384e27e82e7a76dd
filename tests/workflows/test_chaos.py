"""Random schedules with worker SIGKILLs: nothing lost, nothing leaked, nothing wedged.

Seeded: a failing run prints its seed; `ORDERFLOW_CHAOS_SEED=<seed>` repeats the schedules
(`orderflow chaos --seed` does the same outside the test suite). `ORDERFLOW_CHAOS_SECONDS`
and `ORDERFLOW_CHAOS_ORDERS` make the bounded run longer.
"""

import os
import random

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from starter.chaos import run_chaos
from workers.settings import Settings


async def test_random_schedules_with_worker_kills_keep_every_invariant(
    client: Client,
    temporal: WorkflowEnvironment,
    settings: Settings,
    engine: Engine,
    tmp_path: object,
) -> None:
    seed = int(os.environ.get("ORDERFLOW_CHAOS_SEED") or random.randrange(10**6))
    report = await run_chaos(
        client,
        settings,
        engine,
        client.service_client.config.target_host,
        seed=seed,
        count=int(os.environ.get("ORDERFLOW_CHAOS_ORDERS", "10")),
        duration=float(os.environ.get("ORDERFLOW_CHAOS_SECONDS", "25")),
        log=tmp_path / "workers.log",  # type: ignore[operator]
    )
    print(report.model_dump_json(indent=1))
    assert report.kills >= 2, f"seed {seed}: workers were not killed"
    assert not report.busy, f"seed {seed}: still busy: {report.busy}"
    assert not report.violations, f"seed {seed}: {report.violations}"
