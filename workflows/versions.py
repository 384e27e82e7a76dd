"""The order workflow's versions: every patch id (`workflow.patched`) in one place, and when a
run decides them.

A patch asked for right after a local activity can be recorded one workflow task after the one
where a replay looks for it: the SDK may complete a workflow task with a local activity's
marker and hand its result to the workflow only in the next task (a message arrived
meanwhile: a query, an Update), while a replay hands the result over in the marker's own task.
The replay then asks for the patch a task too early, is told it is not in the history, takes
the unpatched branch and fails (TMPRL1100): the order can no longer be queried, reset or
taken over by another worker (seen on an order closing after a refused payment, queried while
it closed; README, "Changing the workflow"). So a run decides its version when it starts,
before any step: `DECIDED_AT_START`, asked by `OrderWorkflow.run` first thing, stands for every
patch made before it (one marker instead of one per patch, each with its search-attribute
upsert), and a patch made after it goes into `LATER`, asked right after it. Runs started
before `DECIDED_AT_START` ask each patch where they always did (the race stays possible for
them, as it was).
"""

from temporalio import workflow

LOCAL_DATABASE_STEPS = "database-steps-local"
"""Orders started before it run every step as an ordinary activity to the end."""

LOCAL_FIRST_PATCH = "outside-calls-local-first"
"""Orders started before it call the gateway and the carriers through ordinary activities
only."""

CAPTURE_PER_WAVE = "capture-per-wave"
"""Each wave of parcels is captured and invoiced once it is delivered, and a lapsed card
authorisation is renewed before a wave is booked and before a capture; orders that got past
their first booking before it capture once, at the end."""

ROUTED_WITH_BOOKING = "routed-with-booking"
"""A wave's ROUTED line is written to the read model by the booking step, in its transaction
(one database step less per wave); orders routed before it wrote it themselves."""

AUDIT_IN_MAIN_LOOP = "approval-audited-by-main-loop"
"""Approvals are audited by the main loop, not by the handler (see README, "Changing the
workflow"); remove the old branch once no order started before it runs."""

RETURNS_IN_A_FRESH_RUN = "returns-in-a-fresh-run"
"""An invoiced order continues as new for its return window, and again whenever Temporal
suggests it; orders already in their return window finish in the run they have."""

TELL_OPERATIONS_ON_FAILURE = "tell-operations-on-failure"
"""A FAILED order notifies operations (and mails them where SMTP is configured)."""

DECIDED_AT_START = "patches-decided-at-start"
"""A run decides its version in its first workflow task: it takes every patch of `BEFORE`,
and asks for each of `LATER` there and then."""

BEFORE = frozenset(
    {
        LOCAL_DATABASE_STEPS,
        LOCAL_FIRST_PATCH,
        CAPTURE_PER_WAVE,
        ROUTED_WITH_BOOKING,
        AUDIT_IN_MAIN_LOOP,
        RETURNS_IN_A_FRESH_RUN,
        TELL_OPERATIONS_ON_FAILURE,
    }
)
"""The patches made before `DECIDED_AT_START` (never add to it)."""

LATER: tuple[str, ...] = ()
"""Patches made after `DECIDED_AT_START`, in the order they were made: asked when a run
starts, so that each is recorded in its first workflow task."""


def decide_at_start() -> None:
    """The run's first step: which version of the workflow this run is."""
    if workflow.patched(DECIDED_AT_START):
        for patch in LATER:
            workflow.patched(patch)


def patched(patch_id: str) -> bool:
    """Whether this run takes the change `patch_id` (the SDK remembers every answer for the
    run, so a branch asked twice goes the same way)."""
    if patch_id in BEFORE and workflow.patched(DECIDED_AT_START):
        return True
    return workflow.patched(patch_id)
