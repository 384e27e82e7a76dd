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
before any step: `OrderWorkflow.run` first asks for the newest of `VERSIONS`, then each older
one until one is in the history. A run records one marker (the newest version's, with its
search-attribute upsert), which stands for every patch made before it: the patches of `BEFORE`
and every version up to its own. Runs started before `DECIDED_AT_START` ask each patch where
they always did (the race stays possible for them, as it was); they take no later version.
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
"""A run decides its version in its first workflow task: it takes every patch of `BEFORE`."""

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

VERSIONS: tuple[str, ...] = (DECIDED_AT_START,)
"""The versions a run can take when it starts, oldest first. A change to the workflow made
from now on is a new version at the end (a constant beside `DECIDED_AT_START`, asked with
`patched` where the code branches): a new run then records that one marker, not one more per
change. Never reorder or remove a version while a run of it may still be open."""


def decide_at_start() -> None:
    """The run's first step: which version of the workflow this run is."""
    _version()


def _version() -> int:
    """How many of `VERSIONS` this run takes (0: it started before `DECIDED_AT_START`).

    A new run records the newest version's marker and asks no older one; a replay finds the
    marker of the version its run took, each newer one answering no. The SDK remembers each
    answer for the run, so asking again later (`patched`) writes nothing and gives the same
    count: the versions older than the run's are never asked.
    """
    for taken in range(len(VERSIONS), 0, -1):
        if workflow.patched(VERSIONS[taken - 1]):
            return taken
    return 0


def patched(patch_id: str) -> bool:
    """Whether this run takes the change `patch_id`: a patch of `BEFORE` or one of
    `VERSIONS`."""
    taken = _version()
    if patch_id in VERSIONS:
        return taken > VERSIONS.index(patch_id)
    if taken:
        return patch_id in BEFORE
    return workflow.patched(patch_id)  # a run of before DECIDED_AT_START: asked where it was
