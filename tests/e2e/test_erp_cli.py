"""The ERP commands as an operator runs them: `orderflow erp-sim` (stopped by SIGTERM and
SIGINT alike), `orderflow reconcile`, the report's ERP section, `orderflow erp retry`."""

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.db.engine import make_engine, upgrade
from activities.erp import WebhookErp
from activities.erp_delivery import DeliveryPolicy, deliver_round
from starter.stack import port_open
from tests.e2e.conftest import ORDERFLOW, free_port, orderflow, wait_until_listening
from tests.factories import authorize, capture, invoice_no
from tests.simulated_erp import placed, postings
from workers.settings import Settings
from workflows.erp_dispatcher import dispatcher_id


def start_sim(env: dict[str, str], port: int, *args: str) -> subprocess.Popen[str]:
    sim = subprocess.Popen(
        [ORDERFLOW, "erp-sim", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_listening(sim, port, "the simulated ERP")
    return sim


def control(url: str, **change: object) -> dict[str, object]:
    request = urllib.request.Request(
        f"{url}/control",
        data=json.dumps(change).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        status: dict[str, object] = json.loads(answer.read())
    return status


def test_reconcile_report_and_retry_against_the_simulated_erp(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**cli_env, "ORDERFLOW_ERP_URL": url}
    settings = Settings(home=Path(env["ORDERFLOW_HOME"]))
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    store = tmp_path / "erp.json"
    sim = start_sim(env, port, "--refuse", "REFUSE-ME", "--store", str(store))
    try:
        order = placed(engine)
        capture(engine, order, authorize(engine, order))
        pending = orderflow("reconcile", env=env)
        assert pending.returncode == 1, pending.stderr
        assert "pending" in pending.stdout and invoice_no(engine, order.order_id) in pending.stdout

        # The same secret on both sides: a file under the install's home.
        erp = WebhookErp(url, settings.erp_signing_secret(), 5)
        policy = DeliveryPolicy(concurrency=1)
        assert deliver_round(engine, erp, policy).delivered == 1
        clean = orderflow("reconcile", env=env)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "1 invoice" in clean.stdout and "clean, no differences" in clean.stdout
        assert json.loads(store.read_text())[0]["document"] == invoice_no(engine, order.order_id)

        control(url, refuse=[order.customer_id])  # the ERP no longer knows the customer
        refused = placed(engine)
        capture(engine, refused, authorize(engine, refused))
        assert deliver_round(engine, erp, policy).refused == 1
        dead = postings(engine, refused.order_id)[0]
        shown = orderflow("report", env=env).stdout
        assert "ERP handoff: 0 pending, 1 delivered, 1 dead" in shown, shown
        assert "ERP dead letters" in shown and "422 refused: the posting contains" in shown
        differences = json.loads(orderflow("reconcile", "--json", env=env).stdout)
        assert [(d["problem"], d["order_id"]) for d in differences["differences"]] == [
            ("dead", refused.order_id)
        ]

        unknown = orderflow("erp", "retry", str(dead.id), "999999", env=env)
        assert (unknown.returncode, unknown.stderr) == (
            1,
            "error: no such posting: 999999 (nothing was changed)\n",
        )
        assert postings(engine, refused.order_id)[0].state == "dead"
        control(url, refuse=[])
        retried = orderflow("erp", "retry", "--all-dead", env=env)
        assert retried.returncode == 0 and "pending again" in retried.stdout, retried.stderr
        assert deliver_round(engine, erp, policy).delivered == 1
        assert [p.state for p in postings(engine)] == ["delivered", "delivered"]
    finally:
        engine.dispose()
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=30) in (0, 130)
    assert not port_open(port)


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_the_simulated_erp_stops_on_sigterm_and_sigint(
    cli_env: dict[str, str], stop_with: signal.Signals
) -> None:
    port = free_port()
    sim = start_sim(cli_env, port, "--down", "--latency-ms", "5")
    try:
        status = control(f"http://127.0.0.1:{port}", down=False, fail_rate=0.5)
        assert (status["down"], status["latency_ms"], status["fail_rate"]) == (False, 5, 0.5)
        sim.send_signal(stop_with)
        assert sim.wait(timeout=30) in (0, 130)
        assert not port_open(port)
    finally:
        if sim.poll() is None:
            sim.kill()


async def test_a_worker_with_an_erp_starts_its_dispatcher_and_still_stops_promptly(
    client: Client, cli_env: dict[str, str]
) -> None:
    """`orderflow worker` with ORDERFLOW_ERP_URL starts the task queue's dispatcher, whose
    long-polling activity does not hold up a SIGTERM."""
    task_queue = f"erp-worker-{uuid.uuid4().hex[:8]}"
    env = {
        **cli_env,
        "ORDERFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "ORDERFLOW_TASK_QUEUE": task_queue,
        "ORDERFLOW_ERP_URL": f"http://127.0.0.1:{free_port()}",  # nobody there: an outage
    }
    worker = subprocess.Popen(
        [ORDERFLOW, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    dispatcher = client.get_workflow_handle(dispatcher_id(task_queue))
    try:
        deadline = time.monotonic() + 30
        while True:  # until its delivery activity runs on the worker
            with contextlib.suppress(RPCError):
                running = (await dispatcher.describe()).raw_description.pending_activities
                if any(a.activity_type.name == "deliver_erp_postings" for a in running):
                    break
            assert worker.poll() is None and time.monotonic() < deadline, "no dispatcher"
            await asyncio.sleep(0.1)
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) in (0, 130)
        assert time.monotonic() - stopping < 5
    finally:
        if worker.poll() is None:
            worker.kill()
        with contextlib.suppress(RPCError):
            await dispatcher.terminate("test over")
