"""The approval inbox served for real (uvicorn in the test's event loop) and a real Chromium."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from sqlalchemy import Engine
from temporalio.client import Client

from starter.web.app import create_app
from tests.factories import make_order, new_sku
from workers.settings import Settings

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web_settings(worker: Settings, tmp_path: Path) -> Settings:
    """The worker's settings plus an inbox on a free port with its own secret."""
    port = free_port()
    return worker.model_copy(
        update={"web_port": port, "web_secret": f"test-secret-{port}", "home": tmp_path}
    )


@pytest.fixture
async def inbox(client: Client, web_settings: Settings) -> AsyncIterator[str]:
    """The inbox app served on 127.0.0.1; yields its base URL."""
    app = create_app(web_settings, client)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=web_settings.web_port, log_level="warning")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{web_settings.web_port}"
    server.should_exit = True
    await task


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium from Debian's packages (nothing is downloaded)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail("install Debian's chromium and chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def held_order(engine: Engine, submitted_by: str | None = None) -> object:
    """An order of 6 x 1000.00 EUR: above the manager threshold, so a manager must approve."""
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    extra = {"submitted_by": submitted_by} if submitted_by else {}
    return make_order({sku: 6}, price="1000.00", **extra)
