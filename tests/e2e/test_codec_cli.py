"""`orderflow codec-server`, `orderflow payload-key` and a key rotation, as operators run them."""

import base64
import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import httpx
from google.protobuf import json_format
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client

from domain.statuses import OrderStatus
from starter import orders
from starter.stack import port_open
from tests.e2e.conftest import ORDERFLOW, free_port, orderflow, run_cli, wait_until_listening
from tests.factories import make_order, new_sku
from tests.payload_keys import TEST_PAYLOAD_ENV
from workers.settings import Settings


def test_the_codec_server_decodes_with_its_token_and_stops_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(cli_env["ORDERFLOW_HOME"])
    env = {**cli_env}
    for knob in ("ORDERFLOW_PAYLOAD_KEYS", "ORDERFLOW_PAYLOAD_KEY_ID"):
        env.pop(knob)  # the embedded default: a key file under home, made once
    port = free_port()
    server = subprocess.Popen(
        [ORDERFLOW, "codec-server", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_listening(server, port, "the codec server")
        token_file, key_file = home / "codec-token", home / "payload-keys"
        for made in (token_file, key_file):
            assert stat.S_IMODE(os.stat(made).st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in (server.stdout.readline() if server.stdout else "")

        # a payload sealed by another process of the same home (the CLI, a worker)
        sealed = subprocess.run(
            [str(Path(ORDERFLOW).parent / "python"), "-c", SEAL],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Anna" not in sealed
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            ok = http.post("/decode", content=sealed, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
            [plain] = json_format.Parse(ok.text, Payloads()).payloads
            assert json.loads(plain.data) == "Anna de Vries"
            assert http.post("/decode", content=sealed).status_code == 401
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) in (0, 130)
        assert not port_open(port)

        taken = subprocess.Popen([ORDERFLOW, "codec-server", "--port", str(port)], env=env)
        try:
            wait_until_listening(taken, port, "the first codec server")
            second = orderflow("codec-server", "--port", str(port), env=env, timeout=30)
            assert second.returncode == 1
            assert second.stderr.strip().splitlines()[-1] == (
                f"error: the codec server could not listen on 127.0.0.1:{port}"
            )
        finally:
            taken.terminate()
            taken.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()


SEAL = """
import asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from workers.codec import data_converter
from workers.settings import Settings
sealed = asyncio.run(data_converter(Settings()).encode(["Anna de Vries"]))
print(json_format.MessageToJson(Payloads(payloads=sealed)))
"""


def test_payload_key_prints_a_fresh_entry(cli_env: dict[str, str]) -> None:
    made = orderflow("payload-key", "k2", env=cli_env)
    assert made.returncode == 0, made.stderr
    key_id, _, key = made.stdout.strip().partition(":")
    assert key_id == "k2" and len(base64.b64decode(key)) == 32
    refused = orderflow("payload-key", "a:b", env=cli_env)
    assert refused.returncode == 1 and refused.stderr.startswith("error: a key id is one word")


async def test_after_a_rotation_the_cli_reads_orders_sealed_with_the_old_key(
    client: Client, worker: Settings, engine: Engine, cli_env: dict[str, str]
) -> None:
    """A new key encrypts; the old one stays configured: orders written before still read.
    Dropped too early, the CLI says in one line which key id is missing."""
    order = make_order({new_sku(engine, {"AMS": 4}): 1})
    await orders.place(client, worker, order)  # sealed with the session key, test-1
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    new_key = base64.b64encode(b"N" * 32).decode()
    env = {
        **cli_env,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": worker.task_queue,
        "ORDERFLOW_DATABASE_URL": worker.database_url or "",
    }

    rotated = {
        **env,
        "ORDERFLOW_PAYLOAD_KEYS": f"{TEST_PAYLOAD_ENV['ORDERFLOW_PAYLOAD_KEYS']},k2:{new_key}",
        "ORDERFLOW_PAYLOAD_KEY_ID": "k2",
    }
    shown = await run_cli("status", order.order_id, "--json", env=rotated)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == OrderStatus.AWAITING_SHIPMENT.value

    dropped = {**env, "ORDERFLOW_PAYLOAD_KEYS": f"k2:{new_key}", "ORDERFLOW_PAYLOAD_KEY_ID": "k2"}
    refused = await run_cli("status", order.order_id, "--json", env=dropped)
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: ") and "key id 'test-1', which is not configured" in line
