"""`orderflow import`: a B2B portal's CSV file placed through the intake desk from the CLI,
sent twice (nothing new the second time), and with a bad row (the rest still placed)."""

import json
import uuid
from pathlib import Path

from temporalio.client import Client

from domain.statuses import OrderStatus
from starter import orders
from tests.e2e.conftest import run_cli
from tests.e2e.test_cli_orders import env_for
from workers.settings import Settings

SAMPLE = Path(__file__).parents[2] / "examples" / "channels" / "portal-orders.csv"


def portal_file(tmp_path: Path, bad_row: bool = False) -> Path:
    """The documented sample with purchase orders of this test's own."""
    tag = uuid.uuid4().hex[:6].upper()
    text = SAMPLE.read_text(encoding="utf-8")
    for po in ("PO-ACME-4711", "PO-ACME-4712", "SO-PO-0093", "SO-PO-0094"):
        text = text.replace(po, f"{po}-{tag}")
    if bad_row:
        text = text.replace(",HS-50,3,", ",HS-50,3.5,")
    file = tmp_path / f"portal-{tag}.csv"
    file.write_text(text, encoding="utf-8")
    return file


async def test_a_portal_file_is_placed_once_however_often_it_is_imported(
    client: Client, worker: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    file = portal_file(tmp_path)

    first = await run_cli("import", str(file), "--channel", "portal", "--json", env=env)
    assert first.returncode == 0, first.stderr
    placed = json.loads(first.stdout)
    assert (placed["placed"], placed["replayed"], placed["invalid"]) == (4, 0, 0)
    ids = sorted(row["order_id"] for row in placed["orders"])

    again = await run_cli("import", str(file), "--channel", "portal", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 placed, 4 replayed, 0 duplicate-suspect, 0 invalid, 0 conflict" in again.stdout

    for order_id in ids:
        state = await orders.wait_for(client, order_id, OrderStatus.VALIDATED, 30)
        assert state.channel == "b2b" and state.status != OrderStatus.REJECTED


async def test_a_bad_row_is_reported_with_its_line_and_the_other_orders_are_placed(
    client: Client, worker: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = env_for(client, worker, cli_env)
    file = portal_file(tmp_path, bad_row=True)
    result = await run_cli("import", str(file), "--channel", "portal", env=env)
    assert result.returncode == 1
    assert f"invalid: {file.name}:6" in result.stdout  # header is line 1, HS-50 is line 6
    assert "quantity" in result.stdout
    assert "3 placed, 0 replayed, 0 duplicate-suspect, 1 invalid, 0 conflict" in result.stdout

    unknown = await run_cli("import", str(file), "--channel", "nope", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: unknown channel 'nope' (known: api, edi, mail")
