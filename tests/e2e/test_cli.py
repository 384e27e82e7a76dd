"""The `orderflow` command as a user runs it: real processes, real exit codes, one-line errors."""

import json
import re
from pathlib import Path

from tests.e2e.conftest import orderflow


def test_demo_runs_orders_to_completion_and_exits(cli_env: dict[str, str]) -> None:
    result = orderflow("demo", "--exit", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("COMPLETED") == 4
    assert result.stdout.count("CANCELLED") == 1 and result.stdout.count("REFUNDED") == 1
    assert "AWAITING_SHIPMENT" in result.stdout
    assert "AWAITING_APPROVAL" in result.stdout and "--as mia.manager" in result.stdout
    assert result.stdout.count("REJECTED") == 1  # the unknown SKU
    # the invoices, the refund and the cancellation reached the (simulated) ERP, in full
    assert re.search(r"ERP \(http://127.0.0.1:\d+\): 7 postings acknowledged", result.stdout)
    assert "reconcile: clean" in result.stdout
    assert result.stdout.count("AWAITING_APPROVAL") == 2  # the manager's, the suspected duplicate
    # one order arrives by each channel, through the HTTP intake
    for channel in ("api", "shop", "portal", "edi", "mail"):
        assert re.search(rf"│ {channel} +│ .+│ 201 +│ {channel}-", result.stdout), channel
    assert "Temporal UI" in result.stdout or "Web UI" in result.stdout
    # One total everywhere: a rejected order shows the total `list` shows for it.
    rejected = [line for line in result.stdout.splitlines() if "REJECTED" in line]
    assert all(re.search(r"\b\d+\.\d\d\b", line) for line in rejected), rejected
    # With --exit the stack is gone: the next steps start with bringing it back.
    assert "The stack has stopped (--exit)" in result.stdout
    assert result.stdout.index("`orderflow dev`") < result.stdout.index("Try:")
    assert "Open the Temporal UI" not in result.stdout
    # The demo's worker logs to a file; an expected rejection is one INFO line there.
    log = (Path(cli_env["ORDERFLOW_HOME"]) / "worker.log").read_text()
    assert "Traceback" not in log and "WARNING" not in log
    assert "InvalidOrder: unknown SKU KB-999 (business failure, not retried)" in log
    assert result.stderr == ""
    # the file-backed server keeps the orders: later runs still work and add new ones, though
    # the earlier runs hold stock (received again) and their customers' credit (released)
    for _ in range(2):
        again = orderflow("demo", "--exit", env=cli_env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Received again what earlier demo runs took: " in again.stdout
        assert again.stdout.count("COMPLETED") == 4 and "REFUNDED" in again.stdout
    assert "CREDIT hold released by fiona.finance" in again.stdout  # the third run's
    # the stack is down: `check` brings the embedded server up for the audit, and all 54
    # demo orders (10 placed by the CLI, 8 by channels, three times) keep every invariant
    audit = orderflow("check", "--json", env=cli_env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    assert report["violations"] == [] and report["checked"]["orders"] == 54


def test_user_mistakes_get_one_line_and_a_nonzero_exit(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"order_id": "x1", "channel": "web"}))
    cases = {
        ("place", str(bad)): "invalid order: customer_id: Field required",
        ("place", str(tmp_path / "missing.json")): "cannot read",
        ("place", "-"): "is not JSON",
        ("status", "nope"): "cannot reach Temporal",
        ("list", "--status", "SLEEPING"): "error:",
    }
    for args, message in cases.items():
        result = orderflow(*args, env=cli_env, stdin="{not json")
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_schema_documents_the_canonical_order(cli_env: dict[str, str]) -> None:
    result = orderflow("schema", env=cli_env)
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert {"order_id", "channel", "customer_id", "currency", "lines", "ship_to"} <= set(
        schema["required"]
    )
