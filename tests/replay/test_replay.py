"""Determinism: the workflows replay the histories of real orders, live ones and recorded ones.

Every `*.json` under `histories/` is a recorded (golden) history and must replay with the
current code. `histories/*.json` were made by the returns-desk version (c56d578: completed,
cancelled, approved), `histories/stage-table/` by the version with the stage table, whose
approvals are audited by the main loop behind the patch "approval-audited-by-main-loop" (the
older ones replay through its unpatched branch); `histories/paths/` hold one golden per path
of an order (and of a goods receipt), one per scenario in `scenarios.py`, made by the version
before "returns-in-a-fresh-run" (28bf278: their return windows replay through its unpatched
branch); `histories/fresh-run/` the same paths by the version with it (an invoiced order
continues as new, so its return window is a second file, `<path>.run2.json`); and
`histories/local-steps/` by the version whose database steps are local activities (patch
"database-steps-local": the older files replay with every step an ordinary activity); and
`histories/decided-at-start/` by the version whose runs decide their version in their first
workflow task (patch "patches-decided-at-start", workflows/versions.py: the older files ask
each patch where they always did). A change that would break orders already running makes
their replay fail here.

When a change is deliberate (and patched with `workflow.patched`), keep the old folders and
record the current version's goldens beside them (a few seconds, its own dev server):

    python -m tests.replay.record              # into histories/<git describe>/
    python -m tests.replay.record histories/x --only happy split

A new path of the order gets a scenario in `scenarios.py` (and so a golden next time).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from domain.order import Order
from domain.policy import SlaPolicy
from domain.state import ContinuedOrder, OrderState
from domain.stock import StockReceipt
from tests.replay import scenarios
from workers.codec import data_converter
from workers.settings import Settings
from workers.worker import BASELINES
from workflows import search, versions
from workflows.order import OrderWorkflow
from workflows.receipt import StockReceiptWorkflow, receipt_workflow_id

HISTORIES = Path(__file__).parent / "histories"
PATHS = (
    HISTORIES / "paths",
    HISTORIES / "fresh-run",
    HISTORIES / "local-steps",
    HISTORIES / "operators",
    HISTORIES / "decided-at-start",
)
GOLDEN = ("completed", "cancelled", "approved")
PATH_NAMES = (  # every path of an order that has a golden of the current version
    "happy",
    "split",
    "backorder-restock",
    "receipt",  # the StockReceiptWorkflow of that restock
    "approval-escalated",
    "auto-rejected",
    "edited",
    "cancel-intake",  # a cancel at each stage that takes one (domain/stages.py) ...
    "cancel-approval",
    "cancel-booking",  # ... and at each wait inside FULFILMENT
    "cancel-backordered",
    "cancel-booked",
    "carrier-fallback",
    "return-partial-refund",
    "credit-note",
)


def replayer(*workflows: type) -> Replayer:
    """Replays inside the SDK's sandbox: workers run without it (for speed), so this is where
    a non-deterministic call in workflow code (clock, randomness, I/O) is caught.

    The converter is the application's (workers/codec.py) with the session's payload key:
    live histories are encrypted with it; the goldens are plain and pass through."""
    return Replayer(
        workflows=list(workflows) or [OrderWorkflow, StockReceiptWorkflow, *BASELINES],
        data_converter=data_converter(Settings()),
        workflow_runner=SandboxedWorkflowRunner(),
    )


async def replay(histories: list[WorkflowHistory], *workflows: type) -> None:
    """Replay every history; the first nondeterminism (or other failure) is raised."""

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    results = await replayer(*workflows).replay_workflows(each(), raise_on_replay_failure=True)
    assert results.replay_failures == {}


def golden(path: Path) -> WorkflowHistory:
    """A recorded history, under the workflow id its type gives its input (see search.py)."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    payloads = list(started.input.payloads)
    kind = started.workflow_type.name
    convert = data_converter(Settings()).payload_converter.from_payloads  # goldens are plain
    if kind == "StockReceiptWorkflow":
        [receipt] = convert(payloads, [StockReceipt])
        workflow_id = receipt_workflow_id(receipt.receipt_id)
    else:
        assert kind == "OrderWorkflow", f"{path.name}: no replayer for {kind}"
        [placed] = convert(payloads, [Order | ContinuedOrder])  # a later run: ContinuedOrder
        order = placed.order if isinstance(placed, ContinuedOrder) else placed
        workflow_id = search.workflow_id(order.order_id)
    return WorkflowHistory(workflow_id, history.events)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_live_histories_replay(client: Client, settings: Settings, engine: Engine) -> None:
    """Every scenario (all of them: ~20 s together) on the session server, then replayed."""
    ids, failures = await scenarios.run(scenarios.Lab(client, engine, settings))
    for name, error in failures.items():
        raise AssertionError(f"scenario {name} failed: {error!r}") from error
    assert sorted(ids) == sorted(scenarios.GOLDENS)
    runs = await asyncio.gather(*(scenarios.runs_of(client, i) for i in ids.values()))
    histories = [history for histories in runs for history in histories]
    for history in histories:
        decided = [("first task", versions.VERSIONS[-1])]  # the newest version, alone
        assert patches_of(history) == decided, history.workflow_id
    await replay(histories)


def patches_of(history: WorkflowHistory) -> list[tuple[str, str]]:
    """The run's patch markers: (in its "first task" or "later", patch id). A run decides its
    version when it starts (workflows/versions.py): a patch recorded in a later workflow task
    could be looked for in the wrong one by a replay."""
    found, tasks = [], 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
        marker = event.marker_recorded_event_attributes
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and marker.marker_name == (
            "core_patch"
        ):
            [data] = marker.details["patch-data"].payloads  # the SDK's own, plain JSON
            patch = json.loads(data.data)
            found.append(("first task" if tasks == 1 else "later", patch["id"]))
    return found


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.glob("**/*.json")), ids=lambda p: str(p.relative_to(HISTORIES))
)
async def test_recorded_history_replays(path: Path) -> None:
    history = golden(path)
    finished = history.events[-1].event_type in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    )
    assert finished or len(history.events) > 20, "a golden is a finished run or a long one"
    await replay([history])


def test_the_recorded_histories_are_there() -> None:
    for version in (HISTORIES, HISTORIES / "stage-table"):
        assert {f"{name}.json" for name in GOLDEN} <= {p.name for p in version.glob("*.json")}
    assert set(PATH_NAMES) <= set(scenarios.GOLDENS)
    for version in PATHS:
        assert set(PATH_NAMES) <= {p.stem for p in version.glob("*.json")}
    # a scenario added later may have its golden in a newer version's folder only
    assert set(scenarios.GOLDENS) <= {p.stem for p in HISTORIES.glob("*/*.json")}


@workflow.defn(name="OrderWorkflow", sandboxed=False)  # the sandbox would re-import pytest
class ReorderedWorkflow:
    """A 'new version' that sleeps before validating: running orders must not accept it."""

    @workflow.run
    async def run(self, order: Order) -> None:
        await workflow.sleep(1)


@pytest.mark.parametrize(
    "name", ["completed.json", "paths/happy.json", "fresh-run/happy.json", "local-steps/happy.json"]
)
async def test_an_incompatible_change_fails_the_replay(name: str) -> None:
    with pytest.raises(workflow.NondeterminismError):
        await replay([golden(HISTORIES / name)], ReorderedWorkflow)


@workflow.defn(name="OrderWorkflow", sandboxed=False)
class UnpatchedFreshRun(OrderWorkflow):
    """The fresh-run change made without `workflow.patched`: every order continues as new."""

    @workflow.init
    def __init__(self, placed: Order | ContinuedOrder) -> None:
        super().__init__(placed)

    @workflow.run
    async def run(self, placed: Order | ContinuedOrder) -> OrderState:
        return await super().run(placed)

    async def _open_returns(self, sla: SlaPolicy) -> None:
        await self._stay_open_for_returns(sla, fresh_run_now=True)


async def test_the_fresh_run_change_needs_its_patch() -> None:
    """Without the patch, orders already in their return window would break (negative
    control for the versioning: the same change behind `workflow.patched` replays)."""
    old = golden(PATHS[0] / "return-partial-refund.json")
    with pytest.raises(workflow.NondeterminismError):
        await replay([old], UnpatchedFreshRun)
    await replay([old], OrderWorkflow)


def test_before_the_version_was_decided_at_start_patches_came_later() -> None:
    """Negative control for the check on live histories: an order of the version before
    "patches-decided-at-start" asked for its fresh return run when invoiced, tasks later."""
    old = golden(HISTORIES / "fresh-run" / "return-partial-refund.json")
    assert ("later", versions.RETURNS_IN_A_FRESH_RUN) in patches_of(old)
    assert versions.DECIDED_AT_START not in {patch for _, patch in patches_of(old)}
