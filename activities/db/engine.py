"""Engine construction and schema upgrades for SQLite (embedded) and PostgreSQL (production)."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Insert, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_SECONDS = 20


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 4) -> Engine:
    """An engine tuned for concurrent activity threads.

    SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` so concurrent writers queue instead
    of failing with "database is locked" when a reader upgrades to a writer. The busy timeout
    (20 s) stays below the activities' 30 s start-to-close timeout, so an attempt Temporal
    has already given up on cannot still be waiting to write.

    PostgreSQL: at most `pool_size + max_overflow` connections (README, "Running in
    production": the budget across workers).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}
        )
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)


READ_ONLY = "orderflow_read_only"


def reader(engine: Engine) -> Engine:
    """`engine` for transactions that only read. On SQLite they begin DEFERRED: they read a
    snapshot of the WAL without taking the write lock, so they neither wait for writers nor
    make writers wait (a transaction that reads and then writes must not use it: its lock
    could not be upgraded while another writer commits). PostgreSQL: no difference."""
    return engine.execution_options(**{READ_ONLY: True})  # a few microseconds: not cached


def take_turns(session: Session, key: str) -> None:
    """Serialise transactions that share `key` until this one ends.

    PostgreSQL: a transaction-scoped advisory lock on the key's hash. SQLite needs nothing:
    `BEGIN IMMEDIATE` already makes every writing transaction take its turn.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


def insert_new(dialect: str, entity: Any) -> Insert:
    """An INSERT of `entity`'s table (for `dialect`, a connection's `dialect.name`) that
    writes nothing where a row with the same unique key exists (`ON CONFLICT DO NOTHING`,
    SQLite and PostgreSQL alike), in one statement instead of a look-up and an insert; add
    `.returning(...)` to learn whether it wrote (no row: it did not; the rowcount cannot tell
    on PostgreSQL, where the insert returns its key)."""
    return dialect_insert(dialect, entity).on_conflict_do_nothing()


def dialect_insert(dialect: str, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """The INSERT of `entity`'s table for `dialect` (a connection's `dialect.name`), SQLite's
    or PostgreSQL's own: the one that offers `on_conflict_do_nothing` / `_do_update`."""
    if dialect == "postgresql":
        return postgresql.insert(entity)
    return sqlite.insert(entity)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at our migrations, for `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Create or upgrade the schema to the newest migration."""
    command.upgrade(alembic_config(url), "head")
