"""The approval inbox: sign in, see what waits for you, approve or reject; e-mailed links.

Every decision goes through the same workflow Updates as `orderflow approve` / `reject`,
always as the signed-in approver (or the approver a link was issued to), so the workflow's
own validator decides and its answer is shown as it is. Forms carry the session's CSRF token;
cookies are HttpOnly and SameSite=Strict.
"""

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import Engine
from temporalio.client import Client

from activities.db.engine import make_engine
from domain.holds import ApprovalDecision, RejectionDecision
from domain.links import SignedClaim, TokenRefused, claim_for, sign, verify
from domain.sla import format_duration
from starter import orders
from starter.orders import UserError
from starter.web import accounts, intake
from starter.web.accounts import ApproverView
from starter.web.metrics import instrument
from starter.web.waiting import facts, now, waiting_for
from workers.client import connect
from workers.settings import Settings

SESSION = "orderflow_session"
FLASH = "orderflow_flash"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals["duration"] = format_duration


class Inbox:
    """What every request needs: settings, the signing secret, the database, Temporal."""

    def __init__(self, settings: Settings, engine: Engine, client: Client | None) -> None:
        self.settings = settings
        self.secret = settings.signing_secret()
        self.engine = engine
        self._client = client

    async def client(self) -> Client:
        if self._client is None:
            try:
                self._client = await connect(self.settings)
            except RuntimeError as error:
                raise UserError(
                    f"cannot reach Temporal at {self.settings.resolved_temporal_address}: "
                    f"{str(error).splitlines()[0]}"
                ) from None
        return self._client

    def session(self, request: Request) -> tuple[ApproverView, SignedClaim] | None:
        token = request.cookies.get(SESSION)
        if not token:
            return None
        try:
            claim = verify(self.secret, token, "session", now())
        except TokenRefused:
            return None
        who = accounts.approver(self.engine, claim.user)
        return (who, claim) if who is not None else None


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    engine = make_engine(settings.resolved_database_url, pool_size=5)
    inbox = Inbox(settings, engine, client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="orderflow",
        summary="Order intake API (orders and channel payloads) and the approval inbox",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.inbox = inbox
    app.include_router(intake.router)
    _document_order_schema(app)
    instrument(app, "inbox")  # GET /metrics: requests by route and status (starter/web/metrics)
    secure = settings.inbox_url.startswith("https://")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        flash = request.cookies.get(FLASH)
        response = TEMPLATES.TemplateResponse(
            request, name, {"flash": flash, "now": now(), **context}, status_code=status
        )
        if flash:
            response.delete_cookie(FLASH)
        return response

    def redirect(to: str, flash: str | None = None) -> Response:
        response = RedirectResponse(to, status_code=303)
        if flash:
            response.set_cookie(FLASH, flash, httponly=True, samesite="strict", secure=secure)
        return response

    def signed_in(request: Request, csrf: str | None = None) -> tuple[ApproverView, str]:
        found = inbox.session(request)
        if found is None:
            raise NotSignedIn()
        who, claim = found
        if csrf is not None and not hmac.compare_digest(csrf, claim.csrf or ""):
            raise BadForm("this form is stale (or was sent from another site): reload and retry")
        return who, claim.csrf or ""

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> Response:
        return page(request, "message.html", status=503, title="Not available", text=str(error))

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, error: NotSignedIn) -> Response:
        return redirect(f"/signin?next={quote(request.url.path)}")

    @app.exception_handler(BadForm)
    async def bad_form(request: Request, error: BadForm) -> Response:
        return page(request, "message.html", status=403, title="Refused", text=str(error))

    @app.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    async def signin_form(request: Request, next: str = "/") -> Response:
        return page(request, "signin.html", next=_local(next), error=None)

    @app.post("/signin", include_in_schema=False)
    async def signin(
        request: Request,
        user: Annotated[str, Form()] = "",
        token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        who = await asyncio.to_thread(accounts.check_token, engine, user.strip(), token.strip())
        if who is None:
            error = "unknown approver or wrong token (ask for a new one: orderflow inbox-token)"
            return page(request, "signin.html", status=401, next=_local(next), error=error)
        claim = claim_for("session", who.user_id, now(), settings.session_valid_for, csrf="")
        claim.csrf = claim.id
        response = redirect(_local(next))
        response.set_cookie(
            SESSION,
            sign(inbox.secret, claim),
            max_age=int(settings.session_valid_for.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        return response

    @app.post("/signout", include_in_schema=False)
    async def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        signed_in(request, csrf)
        response = redirect("/signin", "signed out")
        response.delete_cookie(SESSION)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def waiting(request: Request) -> Response:
        who, csrf = signed_in(request)
        found = await waiting_for(await inbox.client(), engine, settings, who)
        return page(request, "inbox.html", who=who, csrf=csrf, orders=found)

    @app.get("/orders/{order_id}", response_class=HTMLResponse, include_in_schema=False)
    async def order(request: Request, order_id: str) -> Response:
        if intake.wants_json(request):  # an API client following a Location header
            return await intake.order_json(request, order_id)
        who, csrf = signed_in(request)
        state = await orders.state_of(await inbox.client(), order_id)
        shown = await asyncio.to_thread(facts, engine, settings, state, who)
        return page(request, "order.html", who=who, csrf=csrf, order=shown, action=None)

    @app.post("/orders/{order_id}/decide", include_in_schema=False)
    async def decide(
        request: Request,
        order_id: str,
        csrf: Annotated[str, Form()] = "",
        decision: Annotated[str, Form()] = "",
        text: Annotated[str, Form()] = "",
    ) -> Response:
        who, _ = signed_in(request, csrf)
        answer = await _decide(inbox, order_id, decision, who.user_id, text)
        return redirect(f"/orders/{quote(order_id)}", answer)

    @app.get("/link/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def link(request: Request, token: str) -> Response:
        claim, who, refusal = await _link(inbox, token)
        if refusal is not None:
            return page(request, "message.html", status=410, title="Link refused", text=refusal)
        assert claim is not None and claim.order is not None
        state = await orders.state_of(await inbox.client(), claim.order)
        shown = await asyncio.to_thread(facts, engine, settings, state, who)
        return page(request, "order.html", who=who, csrf=None, order=shown, action=f"/link/{token}")

    @app.post("/link/{token}", include_in_schema=False)
    async def act_by_link(
        request: Request,
        token: str,
        decision: Annotated[str, Form()] = "",
        text: Annotated[str, Form()] = "",
    ) -> Response:
        claim, who, refusal = await _link(inbox, token)
        if refusal is not None:
            return page(request, "message.html", status=410, title="Link refused", text=refusal)
        assert claim is not None and claim.order is not None and who is not None
        if decision not in ("approve", "reject") or (decision == "reject" and not text.strip()):
            why = NO_REASON if decision == "reject" else "choose approve or reject"
            return page(request, "message.html", status=400, title="Not sent", text=why)
        if not await asyncio.to_thread(
            accounts.use_link, engine, claim.id, claim.order, who.user_id, decision
        ):
            return page(request, "message.html", status=410, title="Link refused", text=USED)
        answer = await _decide(inbox, claim.order, decision, who.user_id, text)
        return page(request, "message.html", title=f"Order {claim.order}", text=answer)

    return app


NO_REASON = "a rejection needs a reason: go back and write one"
USED = "this link was already used: open the inbox to see where the order stands"


class NotSignedIn(Exception):
    pass


class BadForm(Exception):
    pass


async def _link(
    inbox: Inbox, token: str
) -> tuple[SignedClaim | None, ApproverView | None, str | None]:
    """The claim and approver of a usable link, or why it cannot be used (one line)."""
    try:
        claim = verify(inbox.secret, token, "link", now())
    except TokenRefused as refused:
        return None, None, str(refused)
    if claim.order is None:
        return None, None, "this link names no order"
    used = await asyncio.to_thread(accounts.link_used, inbox.engine, claim.id)
    if used is not None:
        return None, None, USED
    who = await asyncio.to_thread(accounts.approver, inbox.engine, claim.user)
    if who is None:
        return None, None, f"{claim.user} is no longer an active approver"
    return claim, who, None


async def _decide(inbox: Inbox, order_id: str, decision: str, user: str, text: str) -> str:
    """Send the decision as `user`; the workflow's answer, or its refusal, as one line."""
    if decision not in ("approve", "reject"):
        return f"{order_id}: not sent: choose approve or reject"
    client = await inbox.client()
    try:
        if decision == "approve":
            change: Any = ApprovalDecision(by=user, note=text.strip() or None)
            return f"{order_id}: {await orders.approve(client, order_id, change)}"
        if not text.strip():
            return f"{order_id}: not rejected: {NO_REASON}"
        refusal = RejectionDecision(by=user, reason=text.strip())
        return f"{order_id}: {await orders.reject(client, order_id, refusal)}"
    except ValidationError as error:
        first = error.errors()[0]
        return f"{order_id}: not sent: {first['loc'][0]}: {first['msg']}"
    except UserError as error:
        return f"refused: {error}"


def _document_order_schema(app: FastAPI) -> None:
    """Add the canonical order's JSON schema to the OpenAPI document (`/docs`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                intake.openapi_components()
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _local(path: str) -> str:
    """Only redirect within this site (no open redirect through `next`)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"
