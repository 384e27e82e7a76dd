"""The no-op step of the bench's calibration workflows (run in the same thread pool as ours)."""

from temporalio import activity


@activity.defn
def noop(step: int) -> int:
    """Does nothing; a synchronous activity like every other one of ours."""
    return step
