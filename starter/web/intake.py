"""The HTTP intake: `POST /orders` (orderflow's own JSON) and `POST /channels/{name}` (a
channel's native payload: a Shopify webhook, an X12 850, a portal CSV, an e-mail).

Every request is authenticated before anything is read (an API key per channel, or the
webhook's HMAC signature), parsed by the channel's adapter (pure, `domain/channels/`) and
placed through the intake desk (`starter/intake.py`), which makes a replay the same order.
Answers follow HTTP: 201 + Location for a new order, 200 for a replay, 401 for a bad key or
signature (nothing written), 409 for a reference or key reused with other content, 413 for a
body over the limit, 422 with every field error as application/problem+json (RFC 9457).
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from temporalio.service import RPCError

from domain.channels import read
from domain.channels.records import ChannelBatch, ChannelConfig, RecordError
from domain.order import Order
from starter import channels as configured
from starter.intake import IntakeDesk, Placement
from starter.orders import UnknownOrder, UserError
from starter.read_model import find_order, gross_estimate_of
from starter.render import order_total

MAX_BODY = 5 * 1024 * 1024
PROBLEM = "application/problem+json"
SINGLE_ORDER_FORMATS = ("canonical", "shopify")
HMAC_HEADERS = ("x-shopify-hmac-sha256", "x-orderflow-hmac-sha256")

router = APIRouter(tags=["intake"])


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem document."""
    kind = title.lower().replace(" ", "-")
    body = {"type": f"urn:orderflow:problem:{kind}", "title": title, "status": status}
    return JSONResponse({**body, "detail": detail, **extra}, status_code=status, media_type=PROBLEM)


class Refused(Exception):
    """The request is answered with a problem document and nothing is written."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def api_key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request, channel: ChannelConfig, body: bytes) -> None:
    """The channel's own proof: its webhook signature, or one of its API keys."""
    inbox = request.app.state.inbox
    if channel.auth == "hmac":
        secret = configured.webhook_secret(inbox.settings, channel.name)
        sent = next((request.headers[h] for h in HMAC_HEADERS if h in request.headers), None)
        if not configured.signature_matches(secret, body, sent):
            why = "missing" if sent is None else "does not match the body"
            raise Refused(problem(401, "Bad signature", f"the HMAC-SHA256 signature is {why}"))
        return
    key = api_key_of(request)
    owner = await asyncio.to_thread(configured.key_channel, inbox.engine, key) if key else None
    if owner != channel.name:
        detail = (
            f"send an API key of channel {channel.name} (Authorization: Bearer KEY; "
            f"orderflow api-key {channel.name})"
        )
        if key and owner is not None:
            detail = f"this API key belongs to channel {owner}, not {channel.name}"
        response = problem(401, "Unauthorized", detail)
        response.headers["WWW-Authenticate"] = 'Bearer realm="orderflow intake"'
        raise Refused(response)


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise Refused(problem(413, "Too large", f"the body is over {MAX_BODY} bytes"))
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Refused(problem(413, "Too large", f"the body is over {MAX_BODY} bytes"))
    return body


def channels_of(request: Request) -> dict[str, ChannelConfig]:
    """The configured channels, read once per service (not per request)."""
    state = request.app.state
    if getattr(state, "channels", None) is None:
        state.channels = configured.load_channels(state.inbox.settings)
    found: dict[str, ChannelConfig] = state.channels
    return found


def channel_of(request: Request, name: str) -> ChannelConfig:
    try:
        return configured.channel_in(channels_of(request), name)
    except UserError as error:
        raise Refused(problem(404, "Unknown channel", str(error))) from None


async def receive(request: Request, channel: ChannelConfig) -> Response:
    """Authenticate, parse, place; the answer for the whole request."""
    try:
        body = await read_body(request)
        await authenticate(request, channel, body)
    except Refused as refused:
        return refused.response
    source = request.headers.get("x-source-name") or "request"
    now = datetime.now(UTC)
    batch = await asyncio.to_thread(read, channel.format, body, source, channel, now)
    if not batch.orders:
        return acknowledged(request, batch, invalid(batch))
    key = request.headers.get("idempotency-key")
    try:
        client = await request.app.state.inbox.client()
        desk = IntakeDesk(client, request.app.state.inbox.settings, _engine(request))
        placed = [await desk.submit(item, key, body) for item in batch.orders]
    except (UserError, RPCError, DBAPIError) as error:
        # Nothing half-done: a claimed reference without its order is started by the retry.
        detail = (
            f"cannot place orders right now ({_first_line(error)}); send the same request again"
        )
        response = problem(503, "Unavailable", detail)
        response.headers["Retry-After"] = "5"
        return response
    if channel.format in SINGLE_ORDER_FORMATS and len(placed) == 1 and not batch.errors:
        return single(placed[0])
    return acknowledged(request, batch, several(placed, batch))


def acknowledged(request: Request, batch: ChannelBatch, answer: JSONResponse) -> Response:
    """An EDI sender that asks for `application/edi-x12` gets the 997 itself as the body
    (same status); everyone else gets JSON with the 997 in `acknowledgement`."""
    if batch.acknowledgement and "application/edi-x12" in request.headers.get("accept", ""):
        return Response(batch.acknowledgement, answer.status_code, media_type="application/edi-x12")
    return answer


def single(placement: Placement) -> Response:
    if placement.outcome == "conflict":
        return problem(409, "Conflict", placement.detail, order_id=placement.order_id)
    status = 201 if placement.outcome == "placed" else 200
    body = _placement_json(placement)
    return JSONResponse(body, status_code=status, headers={"Location": body["url"]})


def several(placed: list[Placement], batch: ChannelBatch) -> JSONResponse:
    """A file of orders: each order's outcome, each bad record's error; 201 when any was new."""
    outcomes = {p.outcome for p in placed}
    status = 201 if "placed" in outcomes else 200 if "replayed" in outcomes else 409
    body: dict[str, Any] = {
        "orders": [_placement_json(p) for p in placed],
        "errors": [_error_json(e) for e in batch.errors],
    }
    if batch.acknowledgement:
        body["acknowledgement"] = batch.acknowledgement
    return JSONResponse(body, status_code=status)


def invalid(batch: ChannelBatch) -> JSONResponse:
    """Nothing to place: every error, and the sender's acknowledgement (a 997 rejecting it)."""
    errors = batch.errors
    detail = f"{len(errors)} problem(s); nothing was placed" if errors else "no order found"
    extra = {"acknowledgement": batch.acknowledgement} if batch.acknowledgement else {}
    return problem(422, "Invalid order", detail, errors=[_error_json(e) for e in errors], **extra)


def _placement_json(placement: Placement) -> dict[str, Any]:
    return {
        **placement.model_dump(mode="json", exclude_none=True),
        "url": f"/orders/{placement.order_id}",
    }


def _error_json(error: RecordError) -> dict[str, Any]:
    return {**error.model_dump(mode="json", exclude_none=True), "message": str(error)}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.inbox.engine
    return engine


def _order_schema() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Order"}


@router.post(
    "/orders",
    status_code=201,
    summary="Place an order (orderflow's own JSON)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _order_schema()}},
        },
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "the same key and body again answer with the same order (200)",
            }
        ],
    },
    responses={
        200: {"description": "the same order sent again: the order it already is"},
        401: {"description": "no API key of the channel"},
        409: {"description": "the order id or key was used for other content"},
        422: {"description": "application/problem+json with every field error"},
    },
)
async def place_order(request: Request) -> Response:
    """Place one order in the canonical contract (README "The order contract") with an API
    key of the channel whose format is `canonical` (the bundled channels call it `api`)."""
    canonical = [c for c in channels_of(request).values() if c.format == "canonical"]
    if not canonical:
        return problem(404, "Unknown channel", "no channel takes the canonical order format")
    return await receive(request, canonical[0])


@router.post(
    "/channels/{name}",
    summary="Receive a channel's native payload",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/edi-x12": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
                "message/rfc822": {"schema": {"type": "string"}},
            },
        }
    },
    responses={
        200: {"description": "every order in it was received before"},
        201: {"description": "at least one new order; each order's outcome and each bad record"},
        401: {"description": "bad API key or webhook signature; nothing written"},
        404: {"description": "no such channel"},
        422: {"description": "no good record: every error as application/problem+json"},
    },
)
async def channel_payload(request: Request, name: str) -> Response:
    """A Shopify order webhook (HMAC-signed), an X12 850, a B2B portal CSV or an e-mailed
    purchase order, depending on how the channel is configured (`orderflow channels`)."""
    try:
        channel = channel_of(request, name)
    except Refused as refused:
        return refused.response
    return await receive(request, channel)


async def order_json(request: Request, order_id: str) -> Response:
    """`GET /orders/{id}` for API clients (Accept: application/json, any channel's key)."""
    inbox = request.app.state.inbox
    key = api_key_of(request)
    if not key or await asyncio.to_thread(configured.key_channel, inbox.engine, key) is None:
        return problem(401, "Unauthorized", "send an API key (Authorization: Bearer KEY)")
    try:
        state, source = await find_order(await inbox.client(), inbox.settings, order_id)
    except UnknownOrder as error:
        return problem(404, "Unknown order", str(error))
    shown = state.model_dump(
        mode="json", include={"order_id", "status", "customer_id", "channel", "currency", "total"}
    )
    goods_net = order_total(state)  # `total` is the same: the goods' net, once validated
    shown["goods_net"] = None if goods_net is None else str(goods_net)
    shown["gross_estimate"] = await gross_estimate_of(inbox.settings, order_id)
    shown["holds"] = [h.model_dump(mode="json", exclude_none=True) for h in state.holds]
    shown["reason"] = state.reason
    shown["source"] = source
    return JSONResponse(shown)


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def openapi_components() -> dict[str, Any]:
    """The canonical order's schema for the OpenAPI document."""
    schema = Order.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, "Order": schema}
