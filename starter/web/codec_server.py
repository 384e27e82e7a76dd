"""The codec server (`orderflow codec-server`): the Temporal Web UI and CLI decode orders here.

Temporal's remote codec protocol: `POST .../decode` and `POST .../encode` (only the last part
of the path counts, so it can be mounted under a prefix), a JSON body `{"payloads": [...]}`
of Payload messages in protobuf JSON (metadata values and data base64), the namespace in the
`X-Namespace` header. The codec is the application's own (workers/codec.py), keys included.

Who may decode:
- a client that sends `Authorization: Bearer <token>` (the CLI: `temporal workflow show
  --codec-endpoint URL --codec-auth "Bearer <token>"`, scripts, a proxy in front of the UI);
- a browser that signed in on this server's own page (`GET /`, the token once): an HttpOnly
  SameSite=Lax cookie, which the UI sends with its codec calls when its codec setting
  "Include cross-origin credentials" is on (the UI and this server on the same host name,
  e.g. both `localhost`, are same-site, so the cookie goes along; the UI's "Pass access
  token" sends its OIDC token instead, which this server does not verify).
Everything else is 401. CORS admits the UI's origins (ORDERFLOW_CODEC_ORIGINS, default the
embedded UI) with credentials and the Authorization header.
"""

import hashlib
import hmac
import html
import secrets
import time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from starter.web.metrics import instrument
from workers.codec import PayloadKeyError, data_converter
from workers.settings import Settings

COOKIE = "orderflow_codec"
TOKEN_FILE = "codec-token"


def codec_token(settings: Settings) -> str:
    """The bearer token: ORDERFLOW_CODEC_TOKEN, else a file under home made once (0600)."""
    if settings.codec_token:
        return settings.codec_token
    return settings.secret_file(TOKEN_FILE, lambda: secrets.token_urlsafe(32)).strip()


def token_source(settings: Settings) -> str:
    """Where an operator finds the token (never the token itself)."""
    if settings.codec_token:
        return "ORDERFLOW_CODEC_TOKEN"
    return str(settings.home / TOKEN_FILE)


def ui_origins(settings: Settings) -> list[str]:
    """The Web UI origins CORS admits."""
    if settings.codec_origins:
        return [o.strip().rstrip("/") for o in settings.codec_origins.split(",") if o.strip()]
    port = settings.temporal_ui_port
    return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]


def _cookie_value(token: str, expires: int) -> str:
    mac = hmac.new(token.encode(), f"codec-session:{expires}".encode(), hashlib.sha256)
    return f"{expires}.{mac.hexdigest()}"


def _cookie_ok(token: str, value: str | None) -> bool:
    if not value or "." not in value:
        return False
    expires, _, _ = value.partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(value, _cookie_value(token, int(expires)))


def authorised(request: Request, token: str) -> bool:
    """A bearer token equal to ours, or a signed-in browser's cookie."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given:
        return hmac.compare_digest(given.strip().encode(), token.encode())
    return _cookie_ok(token, request.cookies.get(COOKIE))


def create_codec_app(settings: Settings) -> FastAPI:
    """The codec server for the settings' keys, token, namespace and UI origins."""
    token = codec_token(settings)
    codec = data_converter(settings).payload_codec
    origins = ui_origins(settings)
    session_seconds = int(settings.session_valid_for.total_seconds())
    app = FastAPI(title="orderflow codec server", docs_url=None, redoc_url=None)
    instrument(app, "codec")  # GET /metrics: requests by route and status, never a payload
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Authorization-Extras", "Content-Type", "X-Namespace"],
        max_age=600,
    )

    async def convert(request: Request, direction: str) -> Response:
        if not authorised(request, token):
            return JSONResponse(
                {"error": "unauthorised: send Authorization: Bearer <token>, or sign in at /"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="orderflow codec"'},
            )
        namespace = request.headers.get("x-namespace")
        if namespace and namespace != settings.namespace:
            return JSONResponse(
                {"error": f"this codec server serves namespace {settings.namespace!r} only"},
                status_code=403,
            )
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as error:
            problem = str(error).splitlines()[0]
            return JSONResponse({"error": f"not a Payloads JSON: {problem}"}, status_code=400)
        items = list(payloads.payloads)
        if codec is not None:
            try:
                if direction == "decode":
                    items = await codec.decode(items)
                else:
                    items = await codec.encode(items)
            except PayloadKeyError as error:
                return JSONResponse({"error": str(error)}, status_code=422)
        body = json_format.MessageToJson(Payloads(payloads=items))
        return Response(body, media_type="application/json")

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        return await convert(request, "decode")

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        return await convert(request, "encode")

    @app.post("/{prefix:path}/{direction}")
    async def under_prefix(request: Request, prefix: str, direction: str) -> Response:
        if direction not in ("decode", "encode"):
            return JSONResponse({"error": "not found"}, status_code=404)
        return await convert(request, direction)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request, next: str = "") -> str:
        signed_in = _cookie_ok(token, request.cookies.get(COOKIE))
        return _page(settings, signed_in=signed_in, next_url=_safe_next(next, origins))

    @app.post("/sign-in")
    async def sign_in(
        token_given: Annotated[str, Form(alias="token")], next: Annotated[str, Form()] = ""
    ) -> Response:
        if not hmac.compare_digest(token_given.strip().encode(), token.encode()):
            return HTMLResponse(
                _page(settings, signed_in=False, next_url=next, refused=True), status_code=401
            )
        target = _safe_next(next, origins) or "/"
        response = RedirectResponse(target, status_code=303)
        expires = int(time.time()) + session_seconds
        response.set_cookie(
            COOKIE,
            _cookie_value(token, expires),
            max_age=session_seconds,
            httponly=True,
            samesite="lax",
            path="/",
        )
        return response

    @app.post("/sign-out")
    async def sign_out() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return app


def _safe_next(url: str, origins: list[str]) -> str:
    """Only back to a UI origin we serve (no open redirect)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return url if url and origin in origins else ""


def _page(settings: Settings, *, signed_in: bool, next_url: str, refused: bool = False) -> str:
    ui = html.escape(f"{settings.ui_url}/namespaces/{settings.namespace}/workflows")
    endpoint = html.escape(settings.codec_endpoint)
    if signed_in:
        body = (
            "<p><strong>Signed in.</strong> This browser's Temporal UI can decode orders.</p>"
            f"<p>In the UI ({ui}), open the codec settings (<em>Codec Server</em> in the "
            f"navigation): endpoint <code>{endpoint}</code>, tick <em>Include cross-origin "
            "credentials</em> and <em>Use my browser setting and ignore cluster-level "
            "setting</em>.</p>"
            '<form method="post" action="/sign-out"><button>Sign out</button></form>'
        )
    else:
        note = '<p class="refused">That token is not this server\'s.</p>' if refused else ""
        body = (
            f"{note}<p>Sign in with the codec server's token (ORDERFLOW_CODEC_TOKEN, or the "
            f"file <code>{html.escape(token_source(settings))}</code>) so that the Temporal "
            "UI in this browser can decode orders.</p>"
            '<form method="post" action="/sign-in">'
            '<input type="password" name="token" placeholder="token" autofocus>'
            f'<input type="hidden" name="next" value="{html.escape(next_url)}">'
            "<button>Sign in</button></form>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>orderflow codec server</title>"
        "<style>body{font-family:sans-serif;max-width:40rem;margin:3rem auto}"
        "code{background:#eee;padding:0 .2rem}.refused{color:#b00}</style></head>"
        f"<body><h1>orderflow codec server</h1>{body}</body></html>"
    )
