"""Screenshots of the Temporal Web UI for the README: `python -m starter.ui_screenshots DIR`.

Starts an embedded stack of its own (fresh home, free ports, the demo catalog, workers in
this process), places orders so that one waits for a manager with its SLA timer running, one
waits for finance, one is escalated, one completed, one rejected and one failed; checks the
operator queries of the README against the server; then drives headless Chromium (Debian's
chromium and chromedriver, never downloaded) through the UI and saves:

- `temporal-ui-orders.png`: the orders list in the saved view "Orders" (columns OrderStatus,
  CustomerId, OrderTotal, EscalationLevel), `temporal-ui-escalated.png` the view "Escalated";
- `temporal-ui-order-details.png`: the waiting order's User Metadata (summary, details,
  current details), `temporal-ui-order-timeline.png` its timeline with the named SLA timer;
- `temporal-ui-order-encrypted.png`: an order's page as the UI shows it without the codec
  server (ciphertext), `temporal-ui-order-decoded.png` the same page with its input (customer,
  address, lines) decoded through the codec server (the browser signs in on the codec
  server's page first, then the UI's codec setting "Include cross-origin credentials" is on).

Everything it started (server, workers, browser) is stopped on exit, Ctrl-C or SIGTERM.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from temporalio.client import Client

from domain.order import Order
from domain.statuses import OrderStatus
from starter import orders
from starter.cli import leave, report_unexpected
from starter.stack import free_ports
from workers.settings import Settings
from workflows import search

COLUMNS = ("OrderStatus", "CustomerId", "OrderTotal", "EscalationLevel")
"""The saved view's columns, after Temporal's own Status and Workflow ID."""

ORDERS_VIEW = 'WorkflowType = "OrderWorkflow"'
"""The saved view's list query: every order, newest first."""


def operator_queries(today: str) -> dict[str, str]:
    """The list queries operators use (README, "In the Temporal UI"); `today`: YYYY-MM-DD."""
    return {
        "escalated": 'EscalationLevel > 0 AND ExecutionStatus = "Running"',
        "waiting for finance": 'AwaitingApproverTier = "finance"',
        "waiting for any approver": 'OrderStatus = "AWAITING_APPROVAL"',
        "failed today": f'OrderStatus = "FAILED" AND CloseTime > "{today}T00:00:00Z"',
        "rejected or cancelled": 'OrderStatus IN ("REJECTED", "CANCELLED")',
    }


@dataclass
class Scene:
    """What the screenshots show: which order is which."""

    waiting: str
    finance: str
    escalated: str
    shipping: str
    cancelled: str
    rejected: str
    failed: str


def _order(order_id: str, customer: str, lines: list[tuple[str, int, str]], **extra: Any) -> Order:
    return Order.model_validate(
        {
            "order_id": order_id,
            "channel": extra.pop("channel", "web"),
            "customer_id": customer,
            "currency": "EUR",
            "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
            "ship_to": {
                "name": "Anna de Vries",
                "street": "Prinsengracht 263",
                "city": "Amsterdam",
                "postal_code": "1016 GV",
                "country": "NL",
            },
            "promised_days": 5,
            "purchase_order": f"PO-{order_id}",
            **extra,
        }
    )


async def place_scene(client: Client, queues: dict[str, Settings]) -> Scene:
    """Place the orders the screenshots show and wait until each is where it should be."""
    tag = time.strftime("%H%M%S")
    normal, fast, failing = queues["normal"], queues["fast"], queues["failing"]
    scene = Scene(
        waiting=f"ui-{tag}-laptops",
        finance=f"ui-{tag}-chairs",
        escalated=f"ui-{tag}-monitors",
        shipping=f"ui-{tag}-mice",
        cancelled=f"ui-{tag}-headset",
        rejected=f"ui-{tag}-typo",
        failed=f"ui-{tag}-no-carrier",
    )
    plan = [
        (
            normal,
            _order(scene.shipping, "C-WEB-001", [("KB-100", 1, "49.90"), ("MS-200", 2, "19.90")]),
        ),
        (normal, _order(scene.cancelled, "C-WEB-001", [("HS-50", 2, "79.00")])),
        (normal, _order(scene.rejected, "C-WEB-001", [("KB-999", 1, "49.90")])),
        (failing, _order(scene.failed, "C-MKT", [("HS-50", 1, "79.00")], channel="marketplace")),
        (
            fast,
            _order(
                scene.escalated,
                "C-ACME",
                [("MN-27", 24, "229.00")],
                channel="b2b",
                submitted_by="j.buyer",
            ),
        ),
        (normal, _order(scene.finance, "C-SMALL", [("CH-ERG", 6, "399.00")], channel="b2b")),
        (
            normal,
            _order(
                scene.waiting,
                "C-ACME",
                [("LT-14", 5, "1199.00"), ("DK-01", 5, "129.00")],
                channel="b2b",
                submitted_by="j.buyer",
            ),
        ),
    ]
    for settings, order in plan:
        await orders.place(client, settings, order)
    await orders.wait_for(client, scene.shipping, OrderStatus.AWAITING_SHIPMENT, 60)
    await orders.wait_for(client, scene.cancelled, OrderStatus.AWAITING_SHIPMENT, 60)
    await orders.cancel(client, scene.cancelled, "customer found a better offer", "cs-agent")
    await orders.wait_for(client, scene.cancelled, OrderStatus.CANCELLED, 60)
    await orders.wait_for(client, scene.rejected, OrderStatus.REJECTED, 60)
    await orders.wait_for(client, scene.failed, OrderStatus.FAILED, 60)
    await orders.wait_for(client, scene.finance, OrderStatus.AWAITING_APPROVAL, 60)
    await orders.wait_for(client, scene.waiting, OrderStatus.AWAITING_APPROVAL, 60)
    deadline = time.monotonic() + 60
    while (await orders.state_of(client, scene.escalated)).escalation_level < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{scene.escalated} did not escalate")
        await asyncio.sleep(0.5)
    return scene


async def check_queries(client: Client, scene: Scene) -> dict[str, list[str]]:
    """Run every operator query against the server; each must find the order it is for.

    Visibility is updated asynchronously: retried for a few seconds before it counts.
    """
    expected = {
        "escalated": {scene.escalated},
        "waiting for finance": {scene.finance},
        "waiting for any approver": {scene.waiting, scene.finance, scene.escalated},
        "failed today": {scene.failed},
        "rejected or cancelled": {scene.rejected, scene.cancelled},
    }
    today = datetime.now(UTC).date().isoformat()
    found: dict[str, list[str]] = {}
    for name, query in operator_queries(today).items():
        for _ in range(40):
            ids = sorted([e.id.removeprefix("order-") async for e in client.list_workflows(query)])
            if set(ids) == expected[name]:
                break
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError(f"query {name!r} ({query}) found {ids}, not {expected[name]}")
        found[name] = ids
    return found


@contextlib.asynccontextmanager
async def stack(home: Path) -> AsyncIterator[tuple[Client, Settings, dict[str, Settings]]]:
    """Server (with UI) and codec server on free ports, the demo catalog, and three workers in
    this process: ordinary SLAs, a second-long approval SLA (to escalate), and no carrier (to
    fail)."""
    from starter.demo import connect_with_retry, seed_database
    from starter.stack import dev_server
    from starter.web.serving import serving_codec
    from workers.worker import build_worker

    temporal, ui, codec = free_ports(3)
    base = Settings(
        home=home,
        temporal_address=None,
        temporal_port=temporal,
        temporal_ui_port=ui,
        codec_port=codec,
        database_url=None,
        task_queue="ui-orders",
        carrier_latency_ms="1-5",
        gateway_latency_ms="0",
    )
    queues = {
        "normal": base,
        "fast": base.model_copy(update={"task_queue": "ui-fast", "approval_escalate_after": 2}),
        "failing": base.model_copy(
            update={
                "task_queue": "ui-failing",
                "carriers_down": "PARCELCO,SWIFTPOST,GLOBEX",
                "booking_attempts": 2,
            }
        ),
    }
    seed_database(base)
    with dev_server(base, ui=True):  # --ui-codec-endpoint: base.codec_endpoint
        client = await connect_with_retry(base)
        async with serving_codec(base), contextlib.AsyncExitStack() as workers:
            for settings in queues.values():
                await workers.enter_async_context(build_worker(client, settings))
            yield client, base, queues


async def _main(out: Path, serve: bool) -> int:
    """Run until done, or until SIGINT / SIGTERM: then the work is cancelled inside the loop,
    so workers shut down, the browser quits and the server stops, in that order."""
    stop = asyncio.Event()
    halt = threading.Event()  # the browser thread checks it between steps
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    work = asyncio.create_task(_run(out, serve, halt))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not work.done():
        halt.set()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return 130
    return work.result()


async def _run(out: Path, serve: bool, halt: threading.Event) -> int:
    home = Path(tempfile.mkdtemp(prefix="orderflow-ui-"))
    # Rejected and failed orders make the SDK log tracebacks: keep them out of the output.
    logging.basicConfig(filename=home / "worker.log", level=logging.INFO, force=True)
    async with stack(home) as (client, settings, queues):
        print(f"Temporal UI {settings.ui_url} (state in {home})", flush=True)
        scene = await place_scene(client, queues)
        for name, ids in (await check_queries(client, scene)).items():
            print(f"query {name}: {', '.join(ids)}", flush=True)
        if serve:
            print("serving until Ctrl-C", flush=True)
            await asyncio.Event().wait()
        browsing = asyncio.ensure_future(
            asyncio.to_thread(take_screenshots, settings, scene, out, halt)
        )
        try:
            shots = await asyncio.shield(browsing)
        except asyncio.CancelledError:
            halt.set()
            with contextlib.suppress(Exception):
                await browsing  # the browser quits before the server stops
            raise
        for shot in shots:
            print(f"saved {shot}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: the true exit status even if the SDK aborts at exit (see starter.cli)."""
    parser = argparse.ArgumentParser(prog="python -m starter.ui_screenshots")
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/screenshots"))
    parser.add_argument("--serve", action="store_true", help="keep the stack up, no browser")
    args = parser.parse_args(argv)
    try:
        code = asyncio.run(_main(args.out, args.serve))
    except KeyboardInterrupt:
        code = 130
    except Exception as error:
        code = report_unexpected(error)
    leave(code)


SAVED_VIEWS = {
    "Orders": ORDERS_VIEW,
    "Escalated": operator_queries("")["escalated"],
    "Waiting for finance": operator_queries("")["waiting for finance"],
}
"""Views saved in the UI (its Saved Views menu); "failed today" changes date daily, so it is
typed rather than saved."""


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """Headless Chromium driven by chromedriver (Debian's packages; nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()  # chromedriver and every chromium process it started


def _shows(driver: Any, halt: threading.Event, *texts: str, timeout: float = 30) -> None:
    """Wait until the page shows every text (the UI renders after its API calls)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d: Any) -> bool:
        if halt.is_set():
            raise InterruptedError("stopped")
        body = d.find_element(By.TAG_NAME, "body").text
        return all(text in body for text in texts)

    WebDriverWait(driver, timeout, poll_frequency=0.3).until(
        ready, f"the page never showed {texts}"
    )
    time.sleep(1)  # let the last fetches settle before the picture


def _frame_shows(driver: Any, halt: threading.Event, frame_id: str, text: str) -> None:
    """Wait until a rendered markdown frame (the UI draws user metadata in iframes) shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30, poll_frequency=0.3).until(
        lambda d: d.find_elements(By.ID, frame_id), f"no frame {frame_id}"
    )
    driver.switch_to.frame(driver.find_element(By.ID, frame_id))
    try:
        _shows(driver, halt, text)
    finally:
        driver.switch_to.default_content()


def take_screenshots(
    settings: Settings, scene: Scene, out: Path, halt: threading.Event
) -> list[Path]:
    """The saved views and columns, then the waiting order's details and timeline."""
    from selenium.webdriver.common.by import By

    out.mkdir(parents=True, exist_ok=True)
    workflows = f"{settings.ui_url}/namespaces/{settings.namespace}/workflows"
    shots: list[Path] = []

    def save(name: str) -> None:
        shots.append(out / name)
        driver.save_screenshot(str(out / name))

    with browser() as driver:
        order_page = f"{workflows}/{search.workflow_id(scene.shipping)}"
        driver.get(order_page)  # before signing in to the codec server: ciphertext only
        _shows(driver, halt, "Input", "Codec Server could not connect")
        save("temporal-ui-order-encrypted.png")
        use_codec_server(driver, settings, halt)
        driver.get(workflows)
        _shows(driver, halt, "Workflows")
        # The UI keeps its columns per namespace in localStorage; the column chooser (the
        # sliders icon under the table) writes the same entry.
        columns = [{"label": "Status", "pinned": True}, {"label": "Workflow ID", "pinned": True}]
        columns += [{"label": label, "pinned": False} for label in (*COLUMNS, "Start")]
        driver.execute_script(
            "localStorage.setItem('namespace-workflow-table-columns', arguments[0])",
            json.dumps({settings.namespace: columns}),
        )
        for name, query in SAVED_VIEWS.items():  # a link with savedQuery=NAME saves the view
            driver.get(f"{workflows}?{urlencode({'query': query, 'savedQuery': name})}")
            _shows(driver, halt, name, "OrderStatus")

        driver.get(f"{workflows}?{urlencode({'query': ORDERS_VIEW})}")
        _shows(driver, halt, "Orders", "EscalationLevel", scene.waiting, scene.failed, "FAILED")
        save("temporal-ui-orders.png")
        driver.get(f"{workflows}?{urlencode({'query': SAVED_VIEWS['Escalated']})}")
        _shows(driver, halt, "Escalated", scene.escalated)
        save("temporal-ui-escalated.png")

        page = f"{workflows}/{search.workflow_id(scene.waiting)}"
        driver.get(page)
        _shows(driver, halt, "User Metadata", "approval SLA: escalate after 4h")
        driver.find_element(By.CSS_SELECTOR, '[href$="/user-metadata"]').click()
        _shows(driver, halt, "Current Details")
        _frame_shows(driver, halt, "user-metadata-details", "Total")
        _frame_shows(driver, halt, "user-metadata-current-details", "waiting for")
        save("temporal-ui-order-details.png")
        driver.get(page)
        _shows(driver, halt, "approval SLA: escalate after 4h")
        heading = driver.find_element(By.XPATH, "//h2[normalize-space()='Timeline']")
        driver.execute_script("arguments[0].scrollIntoView()", heading)
        time.sleep(1)
        save("temporal-ui-order-timeline.png")

        driver.get(order_page)
        # the order's input as placed, decoded by the codec server: name, street, lines
        _shows(driver, halt, "Input", "Anna de Vries", "Prinsengracht 263", "KB-100")
        name = driver.find_element(By.XPATH, "//*[contains(text(), 'Anna de Vries')]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", name)
        driver.execute_script("window.scrollTo(0, 0)")  # the input box stays scrolled
        time.sleep(1)
        save("temporal-ui-order-decoded.png")
    return shots


def use_codec_server(driver: Any, settings: Settings, halt: threading.Event) -> None:
    """What an operator does once per browser: sign in on the codec server's page with its
    token, then turn on the UI's codec setting "Include cross-origin credentials" (its Codec
    Server dialog writes these local-storage entries), so the UI's /decode calls carry the
    codec server's cookie."""
    from selenium.webdriver.common.by import By

    from starter.web.codec_server import codec_token

    driver.get(f"{settings.codec_endpoint}/")
    driver.find_element(By.NAME, "token").send_keys(codec_token(settings))
    driver.find_element(By.TAG_NAME, "button").click()
    _shows(driver, halt, "Signed in")
    driver.get(settings.ui_url)
    _shows(driver, halt, "Workflows")
    for key, value in {
        "endpoint": settings.codec_endpoint,
        "includeCredentials": True,
        "passAccessToken": False,
        "overrideRemoteCodecConfiguration": True,
    }.items():
        driver.execute_script(
            "localStorage.setItem(arguments[0], arguments[1])", key, json.dumps(value)
        )


if __name__ == "__main__":
    main()
