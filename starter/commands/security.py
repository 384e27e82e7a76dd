"""Security commands: the codec server the Temporal UI decodes orders through, payload keys."""

from typing import Annotated

import typer

from starter.app import app
from starter.orders import UserError
from workers.settings import get_settings

PANEL = "Payload encryption"


@app.command("codec-server", rich_help_panel=PANEL)
def codec_server(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8234)")] = None,
) -> None:
    """Serve /encode and /decode for the Temporal Web UI and CLI (token or signed-in browser)."""
    import uvicorn

    from starter.web.codec_server import create_codec_app, token_source, ui_origins
    from workers.codec import PayloadKeyError

    settings = get_settings()
    host = host or settings.codec_host
    port = port or settings.codec_port
    try:
        codec_app = create_codec_app(settings)
    except PayloadKeyError as error:
        raise UserError(str(error)) from None
    print(
        f"codec server on http://{host}:{port}/ for the UI at {', '.join(ui_origins(settings))}"
        f"\n  token: {token_source(settings)}; browsers sign in at http://{host}:{port}/ "
        "(Ctrl-C stops)",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(codec_app, host=host, port=port, log_level="warning"))
    try:
        server.run()  # SIGINT/SIGTERM: uvicorn stops, then the CLI exits 130
    except SystemExit:  # uvicorn could not bind (it logged why)
        raise UserError(f"the codec server could not listen on {host}:{port}") from None


@app.command("payload-key", rich_help_panel=PANEL)
def payload_key(
    key_id: Annotated[str, typer.Argument(help="the new key's id, e.g. k2 or 2026-12")],
) -> None:
    """Print a fresh random AES-256 key as `ID:base64key` for ORDERFLOW_PAYLOAD_KEYS."""
    from workers.codec import new_key_entry

    if not key_id or any(c in key_id for c in ":,\n "):
        raise UserError("a key id is one word without ':' or ','")
    print(new_key_entry(key_id))
