"""The approval inbox in a real browser: sign in, see the waiting order, approve it, see it move
on; another approver cannot act on it. Screenshots go to docs/screenshots/."""

import asyncio
from decimal import Decimal

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import OrderEvent
from domain.statuses import OrderStatus
from starter import orders
from starter.web.accounts import issue_token
from tests.factories import gross_by_the_tables
from tests.web.conftest import SCREENSHOTS, held_order
from workers.settings import Settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def until(browser: webdriver.Chrome, by: str, what: str, refresh: bool = False) -> WebElement:
    """The element once it is there; with `refresh`, reload until it is (visibility, which
    lists the waiting orders, follows an order's own status by a moment)."""

    def found(driver: webdriver.Chrome) -> WebElement | bool:
        elements = driver.find_elements(by, what)
        if not elements and refresh:
            driver.refresh()
        return elements[0] if elements else False

    return WebDriverWait(browser, 20, poll_frequency=0.25).until(found)


async def listed_as_waiting(client: Client, order_id: str) -> None:
    query = f"WorkflowId = 'order-{order_id}' AND OrderStatus = 'AWAITING_APPROVAL'"
    for _ in range(100):
        if [e async for e in client.list_workflows(query)]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{order_id} never listed as awaiting approval")


def sign_in(browser: webdriver.Chrome, base: str, user: str, token: str) -> None:
    browser.get(f"{base}/")
    assert "/signin" in browser.current_url  # nothing without signing in
    browser.find_element(By.ID, "user").send_keys(user)
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 20).until(
        lambda d: "/signin" not in d.current_url or d.find_elements(By.ID, "error")
    )


@pytest.mark.settings(tax_rates_file=None, charges_file=None)  # the real tables: gross > net
async def test_an_approver_signs_in_sees_the_order_and_approves_it(
    client: Client,
    worker: Settings,
    web_settings: Settings,
    engine: Engine,
    inbox: str,
    browser: webdriver.Chrome,
) -> None:
    token = issue_token(engine, "mia.manager", "mia@example.com")
    order = held_order(engine)
    await orders.place(client, web_settings, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)

    def wrong_then_right() -> str:
        sign_in(browser, inbox, "mia.manager", "not-the-token")
        error = until(browser, By.ID, "error").text
        browser.find_element(By.ID, "user").send_keys("mia.manager")
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "signin").click()
        return error

    error = await asyncio.to_thread(wrong_then_right)
    assert "wrong token" in error

    # 6 x 1000.00 to Amsterdam: shipping is free above 150.00, Dutch VAT on the goods.
    gross = gross_by_the_tables(Decimal("6000.00"), "NL", "dearest")

    def inbox_row() -> tuple[str, dict[str, str]]:
        row = until(browser, By.CSS_SELECTOR, f"tr[data-order='{order.order_id}']", refresh=True)
        browser.save_screenshot(str(SCREENSHOTS / "inbox.png"))
        headers = [  # as written: the page shows headings in capitals
            th.get_attribute("textContent") or ""
            for th in browser.find_elements(By.CSS_SELECTOR, "#waiting th")
        ]
        cells = {
            name: row.find_element(By.CSS_SELECTOR, f"td.{name}").text
            for name in ("goods-net", "gross-estimate", "exposure")
        }
        return row.text, {"headers": " | ".join(headers), **cells}

    row, cells = await asyncio.to_thread(inbox_row)
    assert "AMOUNT" in row and "manager" in row and "C-WEB-001" in row
    assert "Goods net | Gross est." in cells["headers"]
    assert "Credit exposure (gross)" in cells["headers"]
    assert (cells["goods-net"], cells["gross-estimate"]) == ("6000.00 EUR", f"{gross} EUR")
    assert cells["exposure"].endswith(" EUR")
    assert "goods net 6,000.00 EUR above the manager threshold 5,000.00 (net)" in row

    def open_and_approve() -> str:
        browser.find_element(By.LINK_TEXT, order.order_id).click()
        assert until(browser, By.ID, "status").text == "AWAITING_APPROVAL"
        browser.save_screenshot(str(SCREENSHOTS / "order.png"))
        facts = browser.find_element(By.CSS_SELECTOR, ".card dl").text
        assert "Goods net\n6000.00 EUR" in facts, facts
        assert f"Gross estimate\n{gross} EUR incl. shipping and tax" in facts, facts
        assert "Credit exposure (gross)\n" in facts, facts
        until(browser, By.ID, "note").send_keys("known customer, checked by phone")
        browser.find_element(By.ID, "approve").click()
        return until(browser, By.ID, "flash").text

    flash = await asyncio.to_thread(open_and_approve)
    assert flash == f"{order.order_id}: released AMOUNT"
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.holds[0].released_by == "mia.manager"
    with Session(engine) as session:
        audited = session.scalars(
            select(OrderEvent.reason).where(
                OrderEvent.order_id == order.order_id, OrderEvent.actor == "mia.manager"
            )
        ).all()
    assert audited == ["AMOUNT released: known customer, checked by phone"]

    def moved_on() -> tuple[str, bool]:
        browser.refresh()
        status = browser.find_element(By.ID, "status").text
        still_offered = bool(browser.find_elements(By.ID, "approve"))
        browser.get(f"{inbox}/")
        browser.save_screenshot(str(SCREENSHOTS / "inbox-after-approval.png"))
        return status, still_offered or bool(
            browser.find_elements(By.CSS_SELECTOR, f"tr[data-order='{order.order_id}']")
        )

    status, still_listed = await asyncio.to_thread(moved_on)
    assert status == OrderStatus.AWAITING_SHIPMENT.value
    assert not still_listed


async def test_another_approver_cannot_act_on_it(
    client: Client,
    worker: Settings,
    web_settings: Settings,
    engine: Engine,
    inbox: str,
    browser: webdriver.Chrome,
) -> None:
    """Fiona (finance) does not see a manager's order and cannot approve it, even by posting
    the form herself naming Mia; J. Buyer (a manager) cannot approve the order he placed."""
    fiona = issue_token(engine, "fiona.finance", None)
    buyer = issue_token(engine, "j.buyer", None)
    order = held_order(engine, submitted_by="j.buyer")
    await orders.place(client, web_settings, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    await listed_as_waiting(client, order.order_id)  # so "not listed" means "not hers"

    def as_fiona() -> tuple[bool, bool, dict[str, str]]:
        sign_in(browser, inbox, "fiona.finance", fiona)
        listed = bool(browser.find_elements(By.CSS_SELECTOR, f"tr[data-order='{order.order_id}']"))
        browser.get(f"{inbox}/orders/{order.order_id}")
        browser.save_screenshot(str(SCREENSHOTS / "order-not-yours.png"))
        offered = bool(browser.find_elements(By.ID, "approve"))
        cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
        return listed, offered, cookies

    listed, offered, cookies = await asyncio.to_thread(as_fiona)
    assert not listed and not offered

    async with httpx.AsyncClient(base_url=inbox, cookies=cookies) as http:
        page = (await http.get("/")).text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        # the form has no "by": whoever is signed in decides; naming someone else changes nothing
        forged = await http.post(
            f"/orders/{order.order_id}/decide",
            data={"csrf": csrf, "decision": "approve", "text": "as mia", "by": "mia.manager"},
        )
        assert forged.status_code == 303
        follow = await http.get(forged.headers["location"])
        assert "refused" in follow.text and "fiona.finance" in follow.text
        # without the session's CSRF token nothing is sent at all
        stale = await http.post(
            f"/orders/{order.order_id}/decide", data={"csrf": "guess", "decision": "approve"}
        )
        assert stale.status_code == 403
    async with httpx.AsyncClient(base_url=inbox) as anonymous:
        nobody = await anonymous.post(
            f"/orders/{order.order_id}/decide", data={"csrf": "", "decision": "approve"}
        )
        assert nobody.status_code == 303 and "/signin" in nobody.headers["location"]

    def as_the_buyer() -> str:
        browser.delete_all_cookies()
        sign_in(browser, inbox, "j.buyer", buyer)
        browser.get(f"{inbox}/orders/{order.order_id}")
        until(browser, By.ID, "approve").click()  # offered: he is a manager
        return until(browser, By.ID, "flash").text

    flash = await asyncio.to_thread(as_the_buyer)
    assert flash == f"refused: order {order.order_id}: the submitter cannot approve their own order"

    state = await orders.state_of(client, order.order_id)
    assert state.status == OrderStatus.AWAITING_APPROVAL
    assert all(h.is_open for h in state.holds)
