"""The one Settings object: every knob comes from an ORDERFLOW_* environment variable."""

import contextlib
import os
import secrets
from collections.abc import Callable
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
    # A real cluster or Temporal Cloud: TLS (mTLS with a client certificate) or an API key
    temporal_tls: bool = Field(default=False, description="TLS to the frontend (system CAs)")
    temporal_tls_cert: Path | None = Field(default=None, description="client certificate (mTLS)")
    temporal_tls_key: Path | None = Field(default=None, description="its private key (mTLS)")
    temporal_tls_ca: Path | None = Field(default=None, description="CA of the server, if private")
    temporal_tls_server_name: str | None = Field(
        default=None, description="name the server's certificate is checked against"
    )
    temporal_api_key: str | None = Field(
        default=None, description="Temporal Cloud API key (implies TLS)"
    )
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
    card_authorization_valid_for: Duration = Field(
        default=timedelta(days=7),
        description="how long the card gateway honours an authorisation; a wave booked or "
        "captured later is re-authorised first",
    )
    routing_rules_file: Path | None = None
    tax_rates_file: Path | None = Field(
        default=None, description="VAT / sales tax rates (JSON); unset: domain/data/tax_rates.json"
    )
    charges_file: Path | None = Field(
        default=None,
        description="shipping charge and restocking fee rules (JSON); unset: domain/data/",
    )

    # Approval inbox (`orderflow serve`) and e-mail
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_base_url: str | None = Field(
        default=None, description="the inbox as e-mail readers reach it; unset: http://host:port"
    )
    web_secret: str | None = Field(
        default=None, description="signs sessions and e-mail links; unset: a file under home"
    )
    session_valid_for: Duration = timedelta(hours=8)
    link_valid_for: Duration = Field(
        default=timedelta(hours=48), description="how long an e-mailed approve/reject link works"
    )
    smtp_host: str | None = Field(default=None, description="unset: notifications are not mailed")
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "orderflow <orderflow@localhost>"
    operations_email: str | None = Field(
        default=None, description="where exceptions and failed orders are mailed"
    )
    mail_claim: Duration = Field(
        default=timedelta(seconds=60),
        description="how long one worker may take to send one e-mail; a worker that died "
        "sending it leaves it to the next one after this",
    )

    # Intake channels (`orderflow serve`: POST /orders, POST /channels/{name}; `orderflow import`)
    channels_file: Path | None = Field(
        default=None, description="the channels (JSON list); unset: the bundled demo channels"
    )
    channel_secrets: str | None = Field(
        default=None,
        repr=False,
        description='webhook HMAC secrets, "channel:secret,channel2:secret"; unset: a file each '
        "under home",
    )

    # ERP handoff (outbox, dispatcher, `orderflow erp-sim`, `orderflow reconcile`)
    erp_url: str | None = Field(
        default=None,
        description="the ERP's base URL (postings go to <url>/postings); unset: postings wait "
        "in the outbox",
    )
    erp_secret: str | None = Field(
        default=None, repr=False, description="HMAC key signing postings; unset: a file under home"
    )
    erp_timeout: Duration = Field(
        default=timedelta(seconds=10), description="how long one posting waits for the ERP"
    )
    erp_poll_interval: Duration = Field(
        default=timedelta(seconds=1), description="how often an idle dispatcher looks for postings"
    )
    erp_first_retry: Duration = Field(
        default=timedelta(seconds=1), description="the first wait after a failed delivery"
    )
    erp_max_backoff: Duration = Field(
        default=timedelta(minutes=5), description="the longest wait between deliveries (doubling)"
    )
    erp_concurrency: int = Field(default=4, description="orders delivered at once")
    erp_round: Duration = Field(
        default=timedelta(seconds=30), description="one dispatcher activity's long poll"
    )

    # Metrics, traces and logs (README, "Metrics, traces and logs")
    metrics_port: int | None = Field(
        default=None,
        description="Prometheus /metrics of `orderflow worker` (SDK and business metrics); "
        "unset: none",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="address the metrics port listens on (0.0.0.0: all)"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector for traces, e.g. http://localhost:4318; unset: none",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="worker log lines: text (key=value) or json (one object)"
    )

    # Payload encryption (workers/codec.py) and the codec server (`orderflow codec-server`)
    payload_encryption: bool = Field(
        default=True, description="encrypt every payload with AES-GCM (false: write plain)"
    )
    payload_keys: str | None = Field(
        default=None,
        repr=False,
        description='"id:base64key,id2:base64key"; unset: a key file under home',
    )
    payload_key_id: str | None = Field(
        default=None, description="the key id that encrypts; unset: the last key listed"
    )
    codec_host: str = "127.0.0.1"
    codec_port: int = 8234
    codec_url: str | None = Field(
        default=None,
        description="the codec server as the Web UI reaches it; unset: http://localhost:port",
    )
    codec_token: str | None = Field(
        default=None, repr=False, description="bearer token of the codec server; unset: a file"
    )
    codec_origins: str | None = Field(
        default=None, description="Web UI origins allowed by CORS; unset: the embedded UI's"
    )

    @property
    def inbox_url(self) -> str:
        """The inbox's base URL, as put into e-mails."""
        return (self.web_base_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    def signing_secret(self) -> bytes:
        """The secret for sessions and links: ORDERFLOW_WEB_SECRET, else a file under `home`
        made once (mode 0600), so the worker and the inbox of one install agree."""
        if self.web_secret:
            return self.web_secret.encode()
        return self.secret_file("web-secret", lambda: secrets.token_hex(32)).strip().encode()

    def erp_signing_secret(self) -> bytes:
        """The key that signs postings: ORDERFLOW_ERP_SECRET, else a file under `home` made
        once (the workers and `orderflow erp-sim` of one install agree)."""
        if self.erp_secret:
            return self.erp_secret.encode()
        return self.secret_file("erp-secret", lambda: secrets.token_hex(32)).strip().encode()

    def secret_file(self, name: str, make: Callable[[], str]) -> str:
        """The text of the file `name` under `home`, made once with `make()` (mode 0600)."""
        path = self.home / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"{name}.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(make())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)  # atomic: the first process to get there wins
            draft.unlink()
        return path.read_text()

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

    @property
    def codec_endpoint(self) -> str:
        """The codec server as the Web UI calls it (`--ui-codec-endpoint`). localhost, like
        the UI's own address, so the codec server's sign-in cookie is same-site for it."""
        return (self.codec_url or f"http://localhost:{self.codec_port}").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
