"""A SQLite writer gives up before Temporal gives up on its activity attempt."""

from pathlib import Path

from sqlalchemy import text

from activities.db.engine import make_engine
from workflows.steps import STEP_TIMEOUT


def test_a_timed_out_attempt_cannot_still_be_waiting_to_write(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    with engine.connect() as conn:
        busy_ms = conn.execute(text("PRAGMA busy_timeout")).scalar_one()
    engine.dispose()
    assert 0 < busy_ms < STEP_TIMEOUT.total_seconds() * 1000
