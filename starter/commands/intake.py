"""Intake commands: import a channel's file, list the channels, issue their API keys."""

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from domain.channels import read
from starter import channels as configured
from starter import render
from starter.app import JsonFlag, app, run
from starter.orders import UserError
from workers.settings import get_settings

PANEL = "Intake"


@app.command("import", rich_help_panel=PANEL)
def import_file(
    file: Annotated[Path, typer.Argument(help="a channel's file: CSV, X12 850, .eml, JSON")],
    channel: Annotated[str, typer.Option(help="the channel it came from (orderflow channels)")],
    ack: Annotated[
        Path | None, typer.Option(help="write the sender's acknowledgement (an X12 997) here")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Place every order in a channel's file, with the same adapters as the HTTP intake.

    Sending the same file again places nothing new (each order is replayed). Exit status 1
    when any record was invalid or conflicted with an order already received.
    """
    from activities.db.engine import make_engine
    from starter.intake import IntakeDesk, Placement

    settings = get_settings()
    config = configured.channel_named(settings, channel)
    try:
        payload = file.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {file}: {error.strerror}") from None
    batch = read(config.format, payload, file.name, config, datetime.now(UTC))

    async def go(client: Any) -> list[Placement]:
        engine = make_engine(settings.resolved_database_url, pool_size=2)
        desk = IntakeDesk(client, settings, engine)
        placed = []
        columns = (TextColumn("placing"), BarColumn(), MofNCompleteColumn())
        try:
            with Progress(*columns, disable=as_json or not batch.orders) as progress:
                task = progress.add_task("orders", total=len(batch.orders))
                for item in batch.orders:
                    placed.append(await desk.submit(item))
                    progress.advance(task)
        finally:
            engine.dispose()
        return placed

    placed = run(go) if batch.orders else []
    counts = Counter(p.outcome for p in placed)
    summary = {
        "placed": counts["placed"],
        "replayed": counts["replayed"],
        "duplicate_suspect": sum(1 for p in placed if p.duplicate_of),
        "invalid": len({e.record or f"{e.source}:{e.line}" for e in batch.errors}),
        "conflict": counts["conflict"],
    }
    if as_json:
        render.print_json(
            {
                **summary,
                "orders": [p.model_dump(mode="json", exclude_none=True) for p in placed],
                "errors": [str(e) for e in batch.errors],
                "acknowledgement": batch.acknowledgement,
            }
        )
    else:
        for p in placed:
            print(f"{p.order_id}: {p.detail}")
        for bad in batch.errors:
            print(f"invalid: {bad}")
        print(", ".join(f"{n} {k.replace('_', '-')}" for k, n in summary.items()))
    if batch.acknowledgement and ack is not None:
        ack.write_text(batch.acknowledgement)
        print(f"acknowledgement (997) written to {ack}", file=sys.stderr)
    elif batch.acknowledgement and not as_json:
        print("a 997 acknowledgement is ready for the sender: --ack FILE writes it")
    if batch.errors or counts["conflict"]:
        raise typer.Exit(1)


@app.command("channels", rich_help_panel=PANEL)
def list_channels(as_json: JsonFlag = False) -> None:
    """The configured intake channels: where to send, in which format, with which proof."""
    settings = get_settings()
    found = configured.load_channels(settings)
    if as_json:
        render.print_json([c.model_dump(mode="json") for c in found.values()])
        return
    table = Table(title=f"Intake channels ({settings.channels_file or 'bundled'})")
    for column in ("channel", "format", "orders as", "auth", "endpoint", "account / partners"):
        table.add_column(column)
    for c in found.values():
        endpoint = "POST /orders" if c.format == "canonical" else f"POST /channels/{c.name}"
        who = c.customer_id or ", ".join(f"{k}={v}" for k, v in c.partners.items()) or "-"
        table.add_row(c.name, c.format, c.order_channel.value, c.auth, endpoint, who)
    Console().print(table)


@app.command("api-key", rich_help_panel=PANEL)
def api_key(
    channel: Annotated[str, typer.Argument(help="the channel the key sends for")],
    label: Annotated[str, typer.Option(help="who holds it, for the record")] = "",
    revoke: Annotated[bool, typer.Option(help="revoke every key of the channel")] = False,
) -> None:
    """Issue an API key for a channel (shown once; stored as its hash), or revoke its keys."""
    from activities.db.engine import make_engine

    settings = get_settings()
    config = configured.channel_named(settings, channel)
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        if revoke:
            print(f"{channel}: {configured.revoke_api_keys(engine, channel)} key(s) revoked")
            return
        if config.auth != "api_key":
            raise UserError(f"channel {channel} authenticates with an HMAC signature, not keys")
        key = configured.issue_api_key(engine, channel, label or f"issued for {channel}")
    finally:
        engine.dispose()
    print(key)
    print(f"send it as 'Authorization: Bearer <key>' to the {channel} channel; not shown again")
