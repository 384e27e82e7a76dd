"""Integration helpers: an activity retried as Temporal retries it, and a SKU's stock rows held
locked so concurrent attempts pile up behind it."""

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.db.models import Stock

T = TypeVar("T")
WaitBlocked = Callable[[int], None]
StockLock = Callable[[str], AbstractContextManager[WaitBlocked]]


def run_retried(fn: Callable[..., T], *args: Any) -> T:
    """One activity call as Temporal makes it: retried until it succeeds or fails for good."""
    for attempt in range(20):
        try:
            return ActivityEnvironment().run(fn, *args)
        except ApplicationError as error:
            if error.non_retryable:
                raise
        except Exception:  # e.g. IntegrityError when a concurrent attempt committed first
            if attempt == 19:
                raise
    raise AssertionError(f"{fn.__name__} kept failing")


@pytest.fixture
def stock_lock(engine: Engine) -> StockLock:
    """`with stock_lock(sku) as wait_blocked:` holds the SKU's rows until the block ends.

    PostgreSQL: the rows are locked FOR UPDATE; `wait_blocked(n)` returns once n sessions wait
    on a lock. SQLite: the whole database is write-locked (BEGIN IMMEDIATE); `wait_blocked`
    can only give the other threads a moment to queue up.
    """

    @contextmanager
    def locked(sku: str) -> Iterator[WaitBlocked]:
        with Session(engine) as session, session.begin():
            session.execute(select(Stock).where(Stock.sku == sku).with_for_update()).all()
            yield lambda n: _wait_blocked(engine, n)

    return locked


def _wait_blocked(engine: Engine, n: int, timeout: float = 15) -> None:
    if engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            waiting = conn.scalar(query) or 0
        if waiting >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {waiting} of {n} sessions queued behind the stock lock")
        time.sleep(0.02)
