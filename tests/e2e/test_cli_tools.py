"""CLI tools beyond the order itself: stock, restock, setup, bench, malformed decisions."""

import json
import uuid
from pathlib import Path

from temporalio.client import Client

from starter.bench_readme import BEGIN, END
from tests.e2e.conftest import run_cli


def env_for(client: Client, base: dict[str, str]) -> dict[str, str]:
    return {
        **base,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": f"cli-{uuid.uuid4().hex[:8]}",
    }


async def test_stock_restock_setup_and_bench(
    client: Client, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, cli_env)
    assert (await run_cli("seed", env=env)).returncode == 0
    before = json.loads((await run_cli("stock", "LT-14", "--json", env=env)).stdout)
    assert before == [
        {
            "sku": "LT-14",
            "warehouse": "FRA",
            "on_hand": 8,
            "reserved": 0,
            "safety_stock": 1,
            "available": 7,
        }
    ]

    readme = tmp_path / "README.md"
    readme.write_text(f"# Speed\n\n{BEGIN}\n{END}\n\nmore text\n")
    args = ["--orders", "3", "--rounds", "1", "--concurrency", "2", "--open", "2"]
    bench = await run_cli("bench", *args, "--json", "--readme", str(readme), env=env)
    assert bench.returncode == 0, bench.stderr
    result = json.loads(bench.stdout)
    # Each workload ran in the same worker process: 3 measured, 5 alone (3 warmed up before).
    for kind in ("plain", "local", "orders"):
        assert result[kind]["workflows"] == 3 and result[kind]["alone_ms"] > 0
    assert (result["plain"]["activities"], result["plain"]["local_activities"]) == (6, 0)
    assert (result["local"]["activities"], result["local"]["local_activities"]) == (0, 6)
    assert result["orders"]["activities"] + result["orders"]["local_activities"] >= 5
    assert "book_shipments" in result["orders"]["where_the_time_goes_ms_p50"]
    # The workers' CPU inside each step, read from their Prometheus endpoints: every step of
    # an order that ran, a share of the workers' CPU, and the baselines' no-op almost nothing.
    steps = result["orders"]["activity_cpu_ms"]
    assert {"validate_order", "reserve_inventory", "book_shipments"} <= set(steps)
    assert 0 < sum(steps.values()) < result["orders"]["cpu_ms"]["workers"]
    assert set(result["local"]["activity_cpu_ms"]) <= {"noop"}
    assert result["ratios"]["orders_per_local_if_steps_were_free"] > 0
    assert 0 < result["orders"]["cores_busy"]["workers"] <= result["machine"]["cores"]
    assert result["ratios"]["orders_per_plain"] > 0 and result["run"]["workers"] == 1
    assert result["open_orders"]["orders"] == 2
    # Every order the bench placed counts once against its warehouse's capacity today.
    loads = json.loads((await run_cli("warehouses", "--json", env=env)).stdout)
    bench_warehouse = next(row for row in loads if row["warehouse"] == "BNC")
    assert bench_warehouse["orders_today"] >= 3 + 2  # measured and left open, at least
    assert bench_warehouse["left_today"] == (
        bench_warehouse["daily_capacity"] - bench_warehouse["orders_today"]
    )
    # The two open orders stay in the worker's cache (the SDK's gauge, read from the worker).
    opened = result["open_orders"]
    assert opened["sticky_cache_after"] >= opened["sticky_cache_before"] + 2
    table = readme.read_text().split(BEGIN)[1].split(END)[0].strip().splitlines()
    # The e2e environment's carrier latency is part of the command that reproduces the row.
    command = "ORDERFLOW_CARRIER_LATENCY_MS=1-5 orderflow bench --orders 3 --concurrency 2"
    assert len(table) == 3 and f"`{command} --workers 1`" in table[2]
    assert readme.read_text().endswith("more text\n")

    # The bench's workers are gone: the receipt is booked in Temporal, and the command says
    # that nobody answered (after a short wait, not the default minute).
    no_wait = {**env, "ORDERFLOW_ANSWER_TIMEOUT": "3s"}
    restocked = await run_cli("restock", "LT-14", "FRA", "5", "--receipt", "R-CLI-1", env=no_wait)
    assert (restocked.returncode == 1 and "is a worker running" in restocked.stderr) or (
        restocked.returncode == 0
    )
    setup = await run_cli("setup", env=env)
    assert setup.returncode == 0 and "search attributes: all present" in setup.stdout

    report = json.loads((await run_cli("report", "--json", env=env)).stdout)
    placed = 3 + 3 + 5 + 2  # warm-up, measured, alone, open
    assert report["orders"] == placed and report["by_status"] == {"AWAITING_SHIPMENT": placed}

    missing = await run_cli("stock", "NOPE-1", env=env)
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: no stock records for SKU NOPE-1"
    )


async def test_malformed_decisions_get_one_line(
    client: Client, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, cli_env)
    cases = {
        ("return", "o-1", "--line", "KB-100", "--reason", "x"): "use SKU:QTY",
        ("inspect", "RMA-o-1-1", "--line", "KB-100:1:burn"): "use SKU:QTY:DISPOSITION",
        ("receive-return", "not-an-rma"): "error:",
        ("edit", "o-1", "--ship-to", str(tmp_path / "none.json")): "--ship-to",
        ("approve", "o-1"): "--as",
    }
    for args, message in cases.items():
        result = await run_cli(*args, env=env)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
