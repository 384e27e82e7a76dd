"""Placing and following an order with the CLI against the test server and worker."""

import asyncio
import json
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client

from domain.statuses import OrderStatus
from starter import orders
from tests.e2e.conftest import run_cli
from tests.factories import make_order, new_sku
from workers.settings import Settings


def env_for(client: Client, settings: Settings, base: dict[str, str]) -> dict[str, str]:
    return {
        **base,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": settings.task_queue,
        "ORDERFLOW_DATABASE_URL": settings.database_url or "",
    }


async def test_place_follow_and_list_an_order_from_the_cli(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    order = make_order({new_sku(engine, {"FRA": 4}): 2}, country="DE")
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

    again = await run_cli("place", str(file), env=env)
    assert again.returncode == 1 and "already exists" in again.stderr

    # The carrier's delivery webhook may beat the warehouse's ship notice: delivered implies
    # shipped, the goods are booked out and the order completes.
    assert (await run_cli("deliver", order.order_id, env=env)).returncode == 0
    done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert done.status == OrderStatus.COMPLETED

    rows: dict[str, dict[str, object]] = {}
    for _ in range(20):  # visibility is updated asynchronously
        listed = await run_cli("list", "--limit", "1000000", "--json", env=env)
        rows = {row["order_id"]: row for row in json.loads(listed.stdout)}
        if rows.get(order.order_id, {}).get("status") == "COMPLETED":
            break
        await asyncio.sleep(0.25)
    assert rows[order.order_id]["total"] == "20.00"
    assert rows[order.order_id]["status"] == "COMPLETED"

    unknown = await run_cli("status", "no-such-order", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown order no-such-order"
