"""ERP handoff commands: the simulated ERP, dead postings back to pending, reconciling."""

from pathlib import Path
from typing import Annotated

import typer

from starter import render
from starter.app import JsonFlag, app
from starter.orders import UserError
from workers.settings import get_settings

PANEL = "ERP handoff"

erp_app = typer.Typer(
    help="The ERP outbox: send postings the ERP refused again.", no_args_is_help=True
)
app.add_typer(erp_app, name="erp", rich_help_panel=PANEL)


@app.command("erp-sim", rich_help_panel=PANEL)
def erp_sim(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8090,
    latency_ms: Annotated[int, typer.Option(min=0, help="answer each posting this late")] = 0,
    fail_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of postings answered 500")
    ] = 0.0,
    down: Annotated[bool, typer.Option(help="start down: 503 until POST /control")] = False,
    refuse: Annotated[
        list[str] | None, typer.Option(help="refuse (422) postings containing TEXT (repeat)")
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="keep the booked postings in this JSON file")
    ] = None,
) -> None:
    """A simulated ERP for the demo and tests: books signed postings once per key.

    POST /control {"down": true, "latency_ms": 500, "fail_rate": 0.2, "refuse": ["TEXT"]}
    changes how it answers while it runs; GET /postings lists what it acknowledged.
    """
    import uvicorn

    from starter.erp_sim import Behaviour, create_erp_sim

    settings = get_settings()
    behaviour = Behaviour(
        down=down, latency_ms=latency_ms, fail_rate=fail_rate, refuse=list(refuse or [])
    )
    sim = create_erp_sim(settings.erp_signing_secret(), behaviour, store)
    print(
        f"simulated ERP on http://{host}:{port}/ ({len(sim.state.ledger.postings)} postings "
        f"booked; {'down' if down else 'up'}); point the workers at it with "
        f"ORDERFLOW_ERP_URL=http://{host}:{port} (Ctrl-C stops)",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(sim, host=host, port=port, log_level="warning"))
    try:
        server.run()  # SIGINT/SIGTERM: uvicorn stops, then the CLI exits 130
    except SystemExit:  # uvicorn could not bind (it logged why)
        raise UserError(f"the simulated ERP could not listen on {host}:{port}") from None


@erp_app.command("retry")
def retry(
    posting_ids: Annotated[
        list[int] | None, typer.Argument(help="postings to send again (ids from the report)")
    ] = None,
    order: Annotated[str | None, typer.Option(help="every dead posting of this order")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="every dead posting")] = False,
) -> None:
    """Put dead postings (refused by the ERP) back to pending: the dispatcher sends them."""
    from activities.db.engine import make_engine
    from activities.erp_outbox import UnknownPostings, retry_dead

    chosen = [bool(posting_ids), order is not None, all_dead]
    if sum(chosen) != 1:
        raise UserError("name posting ids, or --order ORDER, or --all-dead (one of them)")
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        retried = retry_dead(engine, posting_ids or None, order)
    except UnknownPostings as unknown:
        raise UserError(f"no such posting: {unknown} (nothing was changed)") from None
    finally:
        engine.dispose()
    if not retried:
        print("no dead postings" + (f" of order {order}" if order else ""))
    for posting, was in retried:
        what = f"#{posting.id} {posting.order_id} {posting.kind} {posting.document}"
        if was == "dead":
            print(f"{what}: pending again (was refused: {posting.last_error or '?'})")
        else:
            print(f"{what}: {was}, not dead: left as it is")
    if retried and not settings.erp_url:
        print("no ERP is configured (ORDERFLOW_ERP_URL): they wait in the outbox")


@app.command(rich_help_panel=PANEL)
def reconcile(as_json: JsonFlag = False) -> None:
    """Compare orderflow's invoices, credit notes, refunds, cancellations with the ERP.

    Lists every difference (missing in the ERP, amounts, unknown to orderflow, still
    pending or dead); exit 1 if there is any.
    """
    from starter.reconcile import reconcile_with_erp

    result = reconcile_with_erp(get_settings())
    if as_json:
        render.print_json(result)
    else:
        render.console.print(render.reconcile_report(result))
    if not result["ok"]:
        raise typer.Exit(1)
