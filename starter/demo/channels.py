"""The demo's channel orders: one order arrives by each configured channel, through the HTTP
intake exactly as a storefront, a B2B portal, an EDI partner or a mail gateway would send it
(the samples in `examples/channels/`, given this run's own references)."""

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from starter import channels as configured
from workers.settings import Settings

EXAMPLES = Path(__file__).parents[2] / "examples" / "channels"


@dataclass
class Delivery:
    """One payload as a channel sends it."""

    channel: str
    what: str
    body: bytes
    content_type: str


def deliveries(suffix: str, shop_id: int) -> list[Delivery]:
    """The samples with references unique to this demo run (a second run places new orders)."""
    web = json.loads((EXAMPLES.parent / "web-order.json").read_text())
    web.update(order_id=f"api-{suffix}", purchase_order=f"WEB-{suffix}")
    shop = json.loads((EXAMPLES / "shopify-order.json").read_text())
    shop.update(id=shop_id, name=f"#D{suffix}")
    return [
        Delivery("api", "canonical JSON", json.dumps(web).encode(), "application/json"),
        Delivery(
            "shop", "Shopify orders/create webhook", json.dumps(shop).encode(), "application/json"
        ),
        Delivery(
            "portal", "B2B portal CSV (4 orders)", _tagged("portal-orders.csv", suffix), "text/csv"
        ),
        Delivery(
            "edi",
            "X12 850 purchase order",
            _tagged("purchase-order.x12", suffix),
            "application/edi-x12",
        ),
        Delivery(
            "mail", "e-mailed purchase order", _tagged("email-order.eml", suffix), "message/rfc822"
        ),
    ]


REFERENCES = {
    "portal-orders.csv": ("PO-ACME-4711", "PO-ACME-4712", "SO-PO-0093", "SO-PO-0094"),
    "purchase-order.x12": ("*4500012345*",),
    "email-order.eml": ("20261128093000.4711@", "PO: 4711"),
}


def _tagged(name: str, suffix: str) -> bytes:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    for reference in REFERENCES.get(name, ()):
        bare = reference.strip("*@")
        text = text.replace(reference, reference.replace(bare, f"{bare}-{suffix}"))
    return text.encode("utf-8")


def send(url: str, settings: Settings, keys: dict[str, str], delivery: Delivery) -> tuple[int, Any]:
    """POST one payload the way its channel authenticates; (HTTP status, decoded answer)."""
    channel = configured.channel_named(settings, delivery.channel)
    headers = {"Content-Type": delivery.content_type}
    if channel.auth == "hmac":
        secret = configured.webhook_secret(settings, channel.name)
        headers["X-Shopify-Hmac-Sha256"] = configured.webhook_signature(secret, delivery.body)
    else:
        headers["Authorization"] = f"Bearer {keys[channel.name]}"
    path = "/orders" if channel.format == "canonical" else f"/channels/{channel.name}"
    request = urllib.request.Request(url + path, delivery.body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


async def send_all(
    url: str, settings: Settings, engine: Engine, suffix: str
) -> list[dict[str, str]]:
    """Send every sample; one row per order placed (or per refusal)."""
    keys = {
        name: configured.issue_api_key(engine, name, "demo")
        for name, channel in configured.load_channels(settings).items()
        if channel.auth == "api_key"
    }
    rows = []
    shop_id = int(suffix.replace("-", ""))
    for delivery in deliveries(suffix, shop_id):
        status, answer = await asyncio.to_thread(send, url, settings, keys, delivery)
        placed = answer.get("orders") or ([answer] if "order_id" in answer else [])
        for order in placed:
            rows.append(
                {
                    "channel": delivery.channel,
                    "sent as": delivery.what,
                    "http": str(status),
                    "order_id": order["order_id"],
                    "outcome": order.get("detail", order.get("outcome", "")),
                }
            )
        for error in answer.get("errors", []):
            rows.append(
                {
                    "channel": delivery.channel,
                    "sent as": delivery.what,
                    "http": str(status),
                    "order_id": "-",
                    "outcome": error.get("message", ""),
                }
            )
        if not placed and not answer.get("errors"):
            rows.append(
                {
                    "channel": delivery.channel,
                    "sent as": delivery.what,
                    "http": str(status),
                    "order_id": "-",
                    "outcome": answer.get("detail", ""),
                }
            )
    return rows
