"""The approval inbox served for real (uvicorn in the test's event loop) and a real Chromium."""

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from sqlalchemy import Engine
from temporalio.client import Client

from starter.stack import free_port
from starter.web.serving import serving
from tests.factories import make_order, new_sku
from workers.settings import Settings

# The inbox screenshots in README: written there when ORDERFLOW_SCREENSHOTS names the folder
# (`ORDERFLOW_SCREENSHOTS=docs/screenshots make test`), else to a scratch folder, so a test run
# leaves the tree clean and parallel test workers never write one file at once.
SCREENSHOTS = Path(
    os.environ.get("ORDERFLOW_SCREENSHOTS") or tempfile.mkdtemp(prefix="orderflow-screens-")
)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def web_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings plus an inbox on a free port with its own secret (a test starts
    its worker with these: the `worker` fixture, or its own with e-mail)."""
    port = free_port()
    return settings.model_copy(
        update={"web_port": port, "web_secret": f"test-secret-{port}", "home": tmp_path}
    )


@dataclass
class Mailbox:
    """What a real SMTP server (aiosmtpd) on 127.0.0.1 received."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)  # addresses it refuses for good (550)

    async def handle_RCPT(
        self, server: object, session: object, envelope: Envelope, address: str, options: object
    ) -> str:
        if address in self.unknown:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    async def wait_for(self, to: str, subject_part: str, timeout: float = 30) -> EmailMessage:
        for _ in range(int(timeout / 0.1)):
            for message in self.messages:
                if message["To"] == to and subject_part in message["Subject"]:
                    return message
            await asyncio.sleep(0.1)
        seen = [(m["To"], m["Subject"]) for m in self.messages]
        raise AssertionError(f"no mail to {to} about {subject_part!r}; received {seen}")


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
async def inbox(client: Client, web_settings: Settings) -> AsyncIterator[str]:
    """The inbox app served on 127.0.0.1; yields its base URL."""
    async with serving(web_settings, client) as url:
        yield url


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
