"""The client never misleads a script (issue 14): exit codes, one-line refusals, readable output."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError

from domain.statuses import OrderStatus
from starter import orders
from tests.e2e.conftest import orderflow, run_cli
from tests.e2e.test_cli_orders import env_for
from tests.factories import make_order, new_sku
from workers.settings import Settings
from workflows import search
from workflows.order import OrderWorkflow
from workflows.receipt import receipt_workflow_id

PNG = b"\x89PNG\r\n\x1a\n"


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


async def test_place_wait_fails_when_the_order_ends_short_of_the_stage(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    good = make_order({new_sku(engine, {"FRA": 4}): 1}, country="DE")
    bad = make_order({"NO-SUCH-SKU": 1}, country="DE")
    both = write(tmp_path, "both.json", [json.loads(o.model_dump_json()) for o in (good, bad)])

    placed = await run_cli("place", both, "--wait", "AWAITING_SHIPMENT", "--json", env=env)
    assert placed.returncode == 1
    rows = {row["order_id"]: row for row in json.loads(placed.stdout)}
    assert rows[good.order_id] == {"order_id": good.order_id, "status": "AWAITING_SHIPMENT"}
    assert rows[bad.order_id]["status"] == "REJECTED"
    assert "unknown SKU NO-SUCH-SKU" in rows[bad.order_id]["reason"]
    assert one_error_line(placed.stderr) == (
        f"error: order {bad.order_id} ended REJECTED, not AWAITING_SHIPMENT: "
        f"{rows[bad.order_id]['reason']}"
    )

    # Waiting for the very status it ended in is a success.
    again = make_order({"NO-SUCH-SKU": 1}, country="DE")
    file = write(tmp_path, "again.json", json.loads(again.model_dump_json()))
    rejected = await run_cli("place", file, "--wait", "REJECTED", env=env)
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.split() == [again.order_id, "REJECTED"]


async def test_place_is_as_strict_as_the_readme_and_bad_input_changes_nothing(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    order = json.loads(make_order({new_sku(engine, {"FRA": 4}): 1}).model_dump_json())
    variants: dict[str, tuple[Any, str]] = {}
    for name, (field, value) in {
        "text-quantity": ("quantity", "2"),
        "float-quantity": ("quantity", 2.0),
        "number-money": ("unit_price", 10),
    }.items():
        data = json.loads(json.dumps(order))
        data["lines"][0][field] = value
        message = "must be a JSON integer" if field == "quantity" else "money must be a decimal"
        variants[name] = (data, f"invalid order: lines.0.{field}: {message}")
    twice = {**order, "promised_date": "2030-01-01", "promised_days": 3}
    variants["two-promises"] = (twice, "give promised_days or promised_date, not both")
    variants["empty-list"] = ([], "holds an empty list: no order to place")
    for name, (data, message) in variants.items():
        result = await run_cli("place", write(tmp_path, f"{name}.json", data), env=env)
        assert result.returncode == 1, name
        assert message in one_error_line(result.stderr), (name, result.stderr)
    unknown = await run_cli("status", order["order_id"], env=env)
    assert unknown.returncode == 1 and "unknown order" in unknown.stderr


async def test_a_cancelled_order_shows_its_voided_label_and_one_total(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    order = make_order({new_sku(engine, {"FRA": 4}): 2}, country="DE")
    file = write(tmp_path, "order.json", json.loads(order.model_dump_json()))
    assert (await run_cli("place", file, "--wait", "AWAITING_SHIPMENT", env=env)).returncode == 0
    cancelled = await run_cli("cancel", order.order_id, "--reason", "changed mind", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 30)

    status = json.loads((await run_cli("status", order.order_id, "--json", env=env)).stdout)
    assert [s["state"] for s in status["shipments"]] == ["voided"]
    assert status["total"] == status["goods_net"] == "20.00"
    assert status["gross_estimate"] is not None  # validated: estimated (zero tax here)
    table = (await run_cli("status", order.order_id, env=env)).stdout
    assert "voided" in table and "booked" not in table.split("shipments")[1].split("history")[0]
    assert "goods net 20.00 EUR" in table
    assert f"gross est. {status['gross_estimate']} EUR incl. shipping and tax" in table

    rejected = make_order({"NO-SUCH-SKU": 3}, country="DE")
    file = write(tmp_path, "rejected.json", json.loads(rejected.model_dump_json()))
    await run_cli("place", file, "--wait", "REJECTED", env=env)
    status = json.loads((await run_cli("status", rejected.order_id, "--json", env=env)).stdout)
    assert status["status"] == "REJECTED" and status["total"] == status["goods_net"] == "30.00"
    assert status["gross_estimate"] is None  # rejected before it was priced
    table = (await run_cli("status", rejected.order_id, env=env)).stdout
    assert "goods net 30.00 EUR" in table and "gross est." not in table


async def test_returns_speak_the_cli_spelling_and_a_refunded_rma_says_so(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    sku = new_sku(engine, {"FRA": 4})
    order = make_order({sku: 2}, country="DE")
    file = write(tmp_path, "order.json", json.loads(order.model_dump_json()))
    assert (await run_cli("place", file, "--wait", "AWAITING_SHIPMENT", env=env)).returncode == 0
    assert (await run_cli("deliver", order.order_id, env=env)).returncode == 0
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)

    opened = await run_cli(
        "return", order.order_id, "--line", f"{sku}:1", "--reason", "too big", "--json", env=env
    )
    assert opened.returncode == 0, opened.stderr
    rma = json.loads(opened.stdout)["rma_id"]
    assert (await run_cli("receive-return", rma, env=env)).returncode == 0
    inspected = await run_cli("inspect", rma, "--line", f"{sku}:1:Restock", env=env)
    assert inspected.returncode == 0, inspected.stderr
    assert inspected.stdout.strip() == (
        f"{rma}: refunded 10.00 EUR (refunded on the order so far: 10.00 EUR)"
    )
    again = await run_cli("receive-return", rma, env=env)
    assert again.returncode == 1
    assert one_error_line(again.stderr) == (
        f"error: {rma} is already refunded (10.00 EUR); nothing left to receive"
    )
    twice = await run_cli("inspect", rma, "--line", f"{sku}:1:restock", env=env)
    assert twice.returncode == 1 and "already refunded" in one_error_line(twice.stderr)

    # A sender that still uses the old wire spelling ("RESTOCK") is understood.
    second = await run_cli(
        "return", order.order_id, "--line", f"{sku}:1", "--reason", "x", "--json", env=env
    )
    rma2 = json.loads(second.stdout)["rma_id"]
    assert (await run_cli("receive-return", rma2, env=env)).returncode == 0
    handle = client.get_workflow_handle(search.workflow_id(order.order_id))
    old_wire = {"rma_id": rma2, "lines": [{"sku": sku, "quantity": 1, "disposition": "RESTOCK"}]}
    refund = await handle.execute_update(OrderWorkflow.inspect_return, old_wire)  # type: ignore[arg-type]
    assert str(refund.refunded_total) == "20.00"


async def test_restock_to_an_unknown_warehouse_is_refused_before_anything_starts(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str]
) -> None:
    env = env_for(client, worker, cli_env)
    sku = new_sku(engine, {"FRA": 1})
    cases = {
        (
            "restock",
            sku,
            "NOWHERE",
            "3",
            "--receipt",
            f"R-{sku}-NOWHERE",
        ): "unknown warehouse NOWHERE",
        (
            "restock",
            "NO-SUCH-SKU",
            "FRA",
            "3",
            "--receipt",
            f"R-{sku}-NOSKU",
        ): "unknown SKU NO-SUCH-SKU",
    }
    for args, message in cases.items():
        result = await run_cli(*args, env=env)
        assert result.returncode == 1, args
        assert message in one_error_line(result.stderr)
        assert "nothing was received" in result.stderr
        with pytest.raises(RPCError):  # no StockReceiptWorkflow was started (nor failed)
            await client.get_workflow_handle(receipt_workflow_id(args[-1])).describe()
    ok = await run_cli("restock", sku, "fra", "2", "--receipt", f"R-{sku}-OK", env=env)
    assert ok.returncode == 0, ok.stderr


async def test_report_is_a_table_with_durations_and_a_chart(
    client: Client, worker: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    report = await run_cli("report", env=env)
    assert report.returncode == 0, report.stderr
    assert "{'" not in report.stdout and "day," not in report.stdout
    for text in ("< 24h", "> 99.5 %", "> 96.0 %", "< 5d", "orders by status", "total"):
        assert text in report.stdout, text
    numbers = json.loads((await run_cli("report", "--json", env=env)).stdout)
    assert {"order_accuracy_pct", "cycle_time_hours_median"} <= set(numbers["targets"])

    chart = tmp_path / "kpis.png"
    drawn = await run_cli("report", "--chart", str(chart), env=env)
    assert drawn.returncode == 0, drawn.stderr
    assert chart.read_bytes().startswith(PNG) and chart.stat().st_size > 5000
    bad = await run_cli("report", "--chart", str(tmp_path / "no" / "kpis.png"), env=env)
    assert bad.returncode == 1
    assert one_error_line(bad.stderr) == (
        f"error: --chart {tmp_path / 'no' / 'kpis.png'}: no such directory {tmp_path / 'no'}"
    )


def test_a_second_seed_reports_the_stock_it_kept(cli_env: dict[str, str]) -> None:
    first = orderflow("seed", env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "20 stock rows (20 new)" in first.stdout
    second = orderflow("seed", env=cli_env)
    assert "20 stock rows (0 new, 20 kept as they are" in second.stdout
    assert " 0 stock" not in second.stdout
