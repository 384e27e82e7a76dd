"""The one Settings object: every knob comes from an ORDERFLOW_* environment variable."""

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.sla import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Settings(BaseSettings):
    """orderflow configuration; `ORDERFLOW_<FIELD>` overrides each field."""

    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

    home: Path = Field(default=Path(".orderflow"), description="state dir of the embedded stack")
    temporal_address: str | None = Field(
        default=None, description="existing Temporal frontend host:port; unset: embedded server"
    )
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    namespace: str = "default"
    task_queue: str = "orders"
    database_url: str | None = Field(default=None, description="unset: SQLite under home")

    answer_timeout: Duration = Field(
        default=timedelta(seconds=60), description="how long the CLI waits for an order's answer"
    )

    # Activity behaviour
    activity_threads: int = 32
    workflow_sandbox: bool = Field(
        default=False, description="run workflows in the SDK's sandbox (slower; for development)"
    )
    workflow_cache_size: int = Field(
        default=1000, description="open orders a worker keeps in memory (sticky cache)"
    )
    max_quantity_per_line: int = 1000
    duplicate_window: Duration = timedelta(hours=24)

    # SLA timers (issue-level defaults; seconds work for demos and tests)
    approval_escalate_after: Duration = timedelta(hours=4)
    approval_expire_after: Duration = timedelta(hours=48)
    approval_expire_action: Literal["reject", "cancel", "alert"] = "reject"
    backorder_expire_after: Duration = timedelta(days=14)
    ship_escalate_after: Duration = timedelta(hours=24)
    delivery_grace: Duration = timedelta(days=1)
    return_window: Duration = timedelta(days=30)
    refund_escalate_after: Duration = timedelta(days=5)
    rma_expire_after: Duration = timedelta(days=30)
    booking_attempts: int = 20

    # Approval tiers: above these totals an approver of that tier must sign off
    approval_manager_threshold: Decimal = Decimal("5000")
    approval_director_threshold: Decimal = Decimal("50000")

    # Simulated outside world
    carriers_down: str = Field(default="", description="comma-separated carrier codes to fail")
    carrier_failure_rate: float = 0.0
    carrier_latency_ms: str = "20-80"
    gateway_latency_ms: str = Field(
        default="30-120", description="simulated payment gateway round trip, ms (0: none)"
    )
    routing_rules_file: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        """The domain database URL; a SQLite file under `home` when none is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'orderflow.db').resolve()}"

    @property
    def resolved_temporal_address(self) -> str:
        """Where clients and workers connect."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def ui_url(self) -> str:
        """The Temporal Web UI of the embedded server."""
        return f"http://localhost:{self.temporal_ui_port}"


@lru_cache
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
