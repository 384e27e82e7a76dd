"""The codec server (starter/web/codec_server.py) served for real: who may decode, CORS for the
Web UI, rotation, and Temporal's own CLI decoding an order through it."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.order import Order
from domain.statuses import OrderStatus
from starter import orders
from starter.stack import temporal_binary
from starter.web.codec_server import COOKIE
from starter.web.serving import serving_codec
from tests.factories import make_order, new_sku
from tests.web.conftest import free_port
from workers.codec import KEY_ID, data_converter
from workers.settings import Settings
from workflows import search

TOKEN = "test-codec-token"
UI = "http://localhost:18233"
KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


@pytest.fixture
def codec_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "home": tmp_path,
            "codec_port": free_port(),
            "codec_token": TOKEN,
            "codec_origins": UI,
        }
    )


@pytest.fixture
async def codec_url(codec_settings: Settings) -> AsyncIterator[str]:
    async with serving_codec(codec_settings) as url:
        yield url


def as_json(payloads: list[Payload]) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def from_json(text: str) -> list[Payload]:
    return list(json_format.Parse(text, Payloads()).payloads)


async def placed_order(client: Client, settings: Settings, engine: Engine) -> Order:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 1})
    await orders.place(client, settings, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    return order


async def test_an_authorised_request_decodes_an_order_and_others_are_refused(
    client: Client, worker: Settings, engine: Engine, codec_url: str
) -> None:
    order = await placed_order(client, worker, engine)
    handle = client.get_workflow_handle(search.workflow_id(order.order_id))
    history = await handle.fetch_history()  # as the UI gets it: ciphertext
    started = history.events[0].workflow_execution_started_event_attributes
    body = as_json(list(started.input.payloads))
    assert "Anna de Vries" not in body

    async with httpx.AsyncClient(base_url=codec_url) as http:
        headers = {"Content-Type": "application/json", "X-Namespace": "default"}
        good = await http.post(
            "/decode", content=body, headers={**headers, "Authorization": f"Bearer {TOKEN}"}
        )
        assert good.status_code == 200
        [decoded] = pydantic_data_converter.payload_converter.from_payloads(
            from_json(good.text), [Order]
        )
        assert decoded.ship_to.name == "Anna de Vries"
        assert decoded.order_id == order.order_id

        for refused in (
            headers,
            {**headers, "Authorization": "Bearer not-the-token"},
            {**headers, "Authorization": f"Basic {TOKEN}"},
        ):
            answer = await http.post("/decode", content=body, headers=refused)
            assert answer.status_code == 401
            assert "Anna" not in answer.text
        other = await http.post(
            "/decode",
            content=body,
            headers={"Authorization": f"Bearer {TOKEN}", "X-Namespace": "someone-else"},
        )
        assert other.status_code == 403
        # mounted under a prefix, as the protocol allows: only the last part counts
        nested = await http.post(
            "/codec/default/decode", content=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert nested.status_code == 200 and nested.json() == good.json()


async def test_a_browser_signs_in_once_and_its_cookie_authorises(
    codec_url: str, codec_settings: Settings
) -> None:
    [sealed] = await data_converter(codec_settings).encode(["hello"])
    async with httpx.AsyncClient(base_url=codec_url) as http:
        refused = await http.post("/sign-in", data={"token": "wrong"})
        assert refused.status_code == 401 and COOKIE not in refused.cookies
        signed = await http.post("/sign-in", data={"token": TOKEN, "next": f"{UI}/namespaces"})
        assert signed.status_code == 303
        assert signed.headers["location"] == f"{UI}/namespaces"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        answer = await http.post("/decode", content=as_json([sealed]))  # the cookie goes along
        assert answer.status_code == 200
        assert from_json(answer.text)[0].data == b'"hello"'
        # no open redirect: only back to the UI
        elsewhere = await http.post(
            "/sign-in", data={"token": TOKEN, "next": "https://evil.example/"}
        )
        assert elsewhere.headers["location"] == "/"
        http.cookies.clear()
        assert (await http.post("/decode", content=as_json([sealed]))).status_code == 401


async def test_cors_admits_the_ui_origin_with_credentials_and_no_other(codec_url: str) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with httpx.AsyncClient(base_url=codec_url) as http:
        ui = await http.options("/decode", headers={"Origin": UI, **preflight})
        assert ui.status_code == 200
        assert ui.headers["access-control-allow-origin"] == UI
        assert ui.headers["access-control-allow-credentials"] == "true"
        allowed = ui.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-namespace"} <= {
            h.strip() for h in allowed.split(",")
        }
        other = await http.options(
            "/decode", headers={"Origin": "http://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers
        # a refusal still carries CORS headers, so the UI can tell it was refused
        unauthorised = await http.post("/decode", content="{}", headers={"Origin": UI})
        assert unauthorised.status_code == 401
        assert unauthorised.headers["access-control-allow-origin"] == UI


async def test_after_a_rotation_old_payloads_still_decode_until_their_key_is_dropped(
    settings: Settings, tmp_path: Path
) -> None:
    old = settings.model_copy(update={"payload_keys": f"a:{KEY_A}", "payload_key_id": None})
    [written_with_a] = await data_converter(old).encode([{"customer": "C-1"}])
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def server(keys: str, current: str | None) -> Settings:
        return settings.model_copy(
            update={
                "home": tmp_path,
                "codec_port": free_port(),
                "codec_token": TOKEN,
                "payload_keys": keys,
                "payload_key_id": current,
            }
        )

    rotated = server(f"a:{KEY_A},b:{KEY_B}", "b")
    async with serving_codec(rotated) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/decode", content=as_json([written_with_a]), headers=auth)
        assert answer.status_code == 200
        assert json.loads(from_json(answer.text)[0].data) == {"customer": "C-1"}
        plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
        encoded = await http.post("/encode", content=as_json([plain]), headers=auth)
        assert from_json(encoded.text)[0].metadata[KEY_ID] == b"b"  # the new key encrypts

    dropped = server(f"b:{KEY_B}", None)
    async with serving_codec(dropped) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/decode", content=as_json([written_with_a]), headers=auth)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert "key id 'a', which is not configured" in error and "\n" not in error


async def test_temporals_cli_decodes_an_order_through_the_codec_server(
    client: Client, worker: Settings, engine: Engine, codec_url: str
) -> None:
    """`temporal workflow show --codec-endpoint ... --codec-auth "Bearer ..."`: the protocol
    as Temporal's own tools speak it."""
    order = await placed_order(client, worker, engine)
    base = [
        temporal_binary(),
        "workflow",
        "show",
        "--address",
        client.service_client.config.target_host,
        "--workflow-id",
        search.workflow_id(order.order_id),
        "--output",
        "json",
        "--codec-endpoint",
        codec_url,
    ]

    async def show(*extra: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            *base, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    def order_input(shown: str) -> Payload:
        started = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]
        return json_format.ParseDict(started["input"]["payloads"][0], Payload())

    status, shown = await show("--codec-auth", f"Bearer {TOKEN}")
    assert status == 0, shown
    decoded = order_input(shown)
    assert decoded.metadata["encoding"] == b"json/plain"
    assert b"Anna de Vries" in decoded.data and b"Prinsengracht 263" in decoded.data

    status, shown = await show()  # no token: the codec server refuses, nothing is decoded
    assert status != 0 or order_input(shown).metadata["encoding"] == b"binary/encrypted"
    assert "Anna de Vries" not in shown


async def test_the_codec_server_counts_its_requests_for_prometheus(codec_url: str) -> None:
    async with httpx.AsyncClient(base_url=codec_url) as http:
        refused = await http.post("/decode", json={"payloads": []})
        metrics = await http.get("/metrics")
    assert refused.status_code == 401
    assert metrics.status_code == 200
    assert 'orderflow_http_requests_total{method="POST",route="/decode",service="codec"' in (
        metrics.text
    )
