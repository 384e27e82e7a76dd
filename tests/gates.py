"""Making races deterministic: hold an activity until the test says go; audit at the end."""

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client

from starter.check import check_orders
from workers.settings import Settings
from workers.worker import build_activities


class GoAhead:
    """Stands between an activity and its work: `reached` once it started, runs on `go`."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._go = threading.Event()

    async def reached(self, timeout: float = 30) -> None:
        assert await asyncio.to_thread(self.entered.wait, timeout), "activity never started"

    def go(self) -> None:
        self._go.set()

    def hold(self) -> None:
        """Called from the activity's thread: say it was reached, wait for `go`."""
        self.entered.set()
        self._go.wait(60)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The same activity (name, argument types), waiting for `go` before it runs."""
        name = activity._Definition.must_from_callable(fn).name

        @functools.wraps(fn)
        def held(*args: Any) -> Any:
            self.hold()
            return fn(*args)

        held.__dict__.pop("__temporal_activity_definition", None)  # copied by wraps
        return activity.defn(name=name)(held)


def held_activity(
    client: Client, settings: Settings, engine: Engine, name: str, gate: GoAhead
) -> Callable[..., Any]:
    """Our own activity `name`, held by `gate` (register it with build_worker(overrides=))."""
    for fn in build_activities(settings, engine, client):
        if activity._Definition.must_from_callable(fn).name == name:
            return gate.wrap(fn)
    raise KeyError(name)


async def assert_invariants(client: Client, settings: Settings, engine: Engine) -> dict[str, Any]:
    """`orderflow check` over the test's own orders: no violation of any rule."""
    result = await check_orders(client, settings, engine, task_queue=settings.task_queue)
    assert result["ok"], result["violations"]
    return result
