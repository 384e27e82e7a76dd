"""Placing and following an order with the CLI against the test server and worker."""

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import OrderRecord
from domain.statuses import OrderStatus
from starter import orders
from tests.e2e.conftest import run_cli
from tests.factories import gross_by_the_tables, make_order, new_sku
from workers.settings import Settings


def env_for(client: Client, settings: Settings, base: dict[str, str]) -> dict[str, str]:
    return {
        **base,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": settings.task_queue,
        "ORDERFLOW_DATABASE_URL": settings.database_url or "",
    }


async def listed(order_id: str, status: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The order's `list --json` row once visibility shows it in `status`, and its line of the
    table (wide enough that no column is cut)."""
    rows: dict[str, dict[str, Any]] = {}
    for _ in range(20):  # visibility is updated asynchronously
        listed = await run_cli("list", "--limit", "1000000", "--json", env=env)
        rows = {row["order_id"]: row for row in json.loads(listed.stdout)}
        if rows.get(order_id, {}).get("status") == status:
            break
        await asyncio.sleep(0.25)
    table = (await run_cli("list", "--limit", "1000000", env={**env, "COLUMNS": "400"})).stdout
    header = next(line for line in table.splitlines() if "goods net" in line)
    assert "gross" in header.replace("goods net", "")
    assert "before shipping and tax" in table  # the caption says what each amount is
    return rows[order_id], next(line for line in table.splitlines() if order_id in line)


@pytest.mark.settings(tax_rates_file=None, charges_file=None)  # the real tables: gross > net
async def test_place_follow_and_list_an_order_from_the_cli(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    order = make_order({new_sku(engine, {"FRA": 4}): 2}, country="DE")  # 20.00 net, Frankfurt
    estimate = gross_by_the_tables(Decimal("20.00"), "DE", "dearest")
    invoiced = gross_by_the_tables(Decimal("20.00"), "DE", "DOMESTIC")
    file = tmp_path / "order.json"
    file.write_text(order.model_dump_json())

    placed = await run_cli("place", str(file), "--wait", "AWAITING_SHIPMENT", "--json", env=env)
    assert placed.returncode == 0, placed.stderr
    assert json.loads(placed.stdout) == [
        {"order_id": order.order_id, "status": "AWAITING_SHIPMENT"}
    ]

    status = json.loads((await run_cli("status", order.order_id, "--json", env=env)).stdout)
    assert status["status"] == "AWAITING_SHIPMENT"
    assert status["lines"][0]["quantity"] == 2 and status["lines"][0]["unit_price"] == "10.00"
    assert [e["status"] for e in status["events"]][-1] == "AWAITING_SHIPMENT"
    assert status["allocation"]["decision"]["allocations"][0]["warehouse"] == "FRA"
    # What the customer was told: with no SMTP server configured, written and logged only.
    assert [(n["event"], n["to"], n["state"]) for n in status["customer_notices"]] == [
        ("order_confirmed", "anna.devries@example.com", "not mailed: no SMTP server configured")
    ]
    shown = (await run_cli("status", order.order_id, env=env)).stdout
    assert "told the customer" in shown and "order_confirmed" in shown

    # Before it is invoiced: the goods' net and the gross estimate, each saying which it is.
    with Session(engine) as session:
        record = session.get(OrderRecord, order.order_id)
        assert record is not None and record.gross_estimate == estimate > record.total
    assert (status["total"], status["goods_net"]) == ("20.00", "20.00")
    assert status["gross_estimate"] == str(estimate) and status["billing"] is None
    assert "goods net 20.00 EUR" in shown
    assert f"gross est. {estimate} EUR incl. shipping and tax" in shown
    row, line = await listed(order.order_id, "AWAITING_SHIPMENT", env)
    assert (row["total"], row["goods_net"], row["currency"]) == ("20.00", "20.00", "EUR")
    assert (row["gross_estimate"], row["invoiced_gross"]) == (str(estimate), None)
    assert "20.00 EUR" in line and f"est. {estimate} EUR" in line

    again = await run_cli("place", str(file), env=env)
    assert again.returncode == 1 and "already exists" in again.stderr

    # The carrier's delivery webhook may beat the warehouse's ship notice: delivered implies
    # shipped, the goods are booked out and the order completes.
    assert (await run_cli("deliver", order.order_id, env=env)).returncode == 0
    done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert done.status == OrderStatus.COMPLETED

    # Invoiced: the invoice's gross (the shipping charged, not the dearest), said so.
    row, line = await listed(order.order_id, "COMPLETED", env)
    assert (row["status"], row["total"], row["goods_net"]) == ("COMPLETED", "20.00", "20.00")
    assert (row["gross_estimate"], row["invoiced_gross"]) == (str(estimate), str(invoiced))
    assert f"invoiced {invoiced} EUR" in line and "est." not in line
    status = json.loads((await run_cli("status", order.order_id, "--json", env=env)).stdout)
    assert status["billing"]["gross"] == str(invoiced) and status["goods_net"] == "20.00"
    shown = (await run_cli("status", order.order_id, env=env)).stdout
    assert f"gross {invoiced} EUR" in shown and "gross est." not in shown

    unknown = await run_cli("status", "no-such-order", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown order no-such-order"
