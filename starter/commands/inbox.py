"""Approver commands: the approval inbox web server and its sign-in tokens."""

from typing import Annotated

import typer

from starter.app import app
from starter.orders import UserError
from workers.settings import get_settings

PANEL = "Approval inbox"


@app.command(rich_help_panel=PANEL)
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
) -> None:
    """Serve the order intake API (POST /orders, POST /channels/NAME; docs at /docs) and the
    approval inbox (approvers sign in, see what waits for them, decide)."""
    import uvicorn

    from starter.web.app import create_app

    settings = get_settings()
    host = host or settings.web_host
    port = port or settings.web_port
    print(
        f"intake API on http://{host}:{port}/orders (docs: /docs), "
        f"approval inbox on http://{host}:{port}/ (Ctrl-C stops)",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    )
    server.run()


@app.command("inbox-token", rich_help_panel=PANEL)
def inbox_token(
    user: Annotated[str, typer.Argument(help="the approver's user id")],
    email: Annotated[str | None, typer.Option(help="where their notices are mailed")] = None,
) -> None:
    """Issue a new inbox sign-in token for an approver (shown once; the old one stops working)."""
    from activities.db.engine import make_engine
    from starter.web.accounts import UnknownApprover, issue_token

    if email is not None and ("@" not in email or any(c.isspace() for c in email)):
        raise UserError(f"--email {email!r} is not an e-mail address")
    engine = make_engine(get_settings().resolved_database_url, pool_size=1)
    try:
        token = issue_token(engine, user, email)
    except UnknownApprover as error:
        raise UserError(str(error)) from None
    finally:
        engine.dispose()
    print(f"{user}: {token}")
    print("sign in at the inbox with this user id and token; it is not shown again")
