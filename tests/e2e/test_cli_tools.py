"""CLI tools beyond the order itself: stock, restock, setup, bench, malformed decisions."""

import json
import uuid
from pathlib import Path

from temporalio.client import Client

from tests.e2e.conftest import run_cli


def env_for(client: Client, base: dict[str, str]) -> dict[str, str]:
    return {
        **base,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": f"cli-{uuid.uuid4().hex[:8]}",
    }


async def test_stock_restock_setup_and_bench(client: Client, cli_env: dict[str, str]) -> None:
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

    bench = await run_cli("bench", "--orders", "3", "--concurrency", "2", "--json", env=env)
    assert bench.returncode == 0, bench.stderr
    result = json.loads(bench.stdout)
    assert result["orders"] == 3 and result["ratio"] > 0

    restocked = await run_cli("restock", "LT-14", "FRA", "5", "--receipt", "R-CLI-1", env=env)
    assert (restocked.returncode == 1 and "is a worker running" in restocked.stderr) or (
        restocked.returncode == 0
    )
    setup = await run_cli("setup", env=env)
    assert setup.returncode == 0 and "search attributes: all present" in setup.stdout

    report = json.loads((await run_cli("report", "--json", env=env)).stdout)
    assert report["orders"] == 3 and report["by_status"] == {"AWAITING_SHIPMENT": 3}

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
