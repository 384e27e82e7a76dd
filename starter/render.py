"""How the CLI shows orders to people: rich tables, or stable JSON with --json."""

import json
import shutil
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic_core import to_jsonable_python
from rich.console import Console, Group
from rich.table import Table

from domain.fulfilment import Shipment
from domain.sla import format_duration
from domain.state import OrderState
from domain.statuses import OrderStatus

# Piped output would otherwise wrap at 80 columns and fold order ids.
console = Console(width=shutil.get_terminal_size((150, 40)).columns)


def print_json(value: Any) -> None:
    """Stable machine-readable output (money as decimal strings, dates as ISO 8601)."""
    print(json.dumps(to_jsonable_python(value), indent=2, sort_keys=True))


AMOUNTS_CAPTION = (
    "goods net: the goods at the order's prices, before shipping and tax (what the approval "
    "thresholds compare). gross: est. = goods + the dearest shipping + tax, as validated (at "
    "most what the order costs); invoiced = what its invoices bill, tax included"
)


def order_table(rows: list[dict[str, Any]], title: str = "Orders") -> Table:
    table = Table(title=title, caption=AMOUNTS_CAPTION)
    columns = ("order", "status", "customer", "channel", "goods net", "gross")
    for column in (*columns, "esc.", "placed", "from"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(
            row["order_id"],
            row["status"] or "?",
            row.get("customer_id") or "",
            row.get("channel") or "",
            _amount(row.get("total"), row.get("currency")),
            gross_cell(row),
            str(row.get("escalation_level", 0)),
            (row.get("started_at") or "")[:19].replace("T", " "),
            "" if row.get("source", "temporal") == "temporal" else str(row["source"]),
        )
    return table


BILLED = frozenset(
    {
        OrderStatus.COMPLETED.value,
        OrderStatus.RETURN_REQUESTED.value,
        OrderStatus.RETURN_RECEIVED.value,
        OrderStatus.REFUNDED.value,
    }
)
"""Statuses of an order whose invoicing is done: its invoiced gross is its gross."""


def gross_cell(row: dict[str, Any]) -> str:
    """The `list` row's gross, saying which it is: "est. 53.49 EUR" (validation's estimate),
    "invoiced 41.59 EUR", or both while an open order is invoiced in parts; "" when unknown."""
    estimate, invoiced = row.get("gross_estimate"), row.get("invoiced_gross")
    currency = row.get("currency")
    if invoiced is not None and (estimate is None or row.get("status") in BILLED):
        return f"invoiced {_amount(invoiced, currency)}"
    if invoiced is not None:
        return f"est. {_amount(estimate, currency)}, invoiced {_amount(invoiced, currency)} so far"
    return f"est. {_amount(estimate, currency)}" if estimate is not None else ""


def _amount(amount: str | None, currency: str | None) -> str:
    if amount is None:
        return ""
    return f"{amount} {currency}" if currency else amount


def stock_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Stock")
    for column in ("sku", "warehouse", "on_hand", "reserved", "safety_stock", "available"):
        table.add_column(
            column, no_wrap=True, justify="left" if column in ("sku", "warehouse") else "right"
        )
    for row in rows:
        table.add_row(
            *(
                str(row[c])
                for c in ("sku", "warehouse", "on_hand", "reserved", "safety_stock", "available")
            )
        )
    return table


def warehouse_table(rows: list[dict[str, Any]]) -> Table:
    day = rows[0]["day"] if rows else ""
    table = Table(title=f"Warehouses on {day} (UTC)")
    columns = ("warehouse", "country", "daily_capacity", "orders_today", "left_today")
    for column in columns:
        table.add_column(column, no_wrap=True, justify="left" if column in columns[:2] else "right")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    return table


def show_state(
    state: OrderState,
    source: str = "temporal",
    told: list[dict[str, Any]] | None = None,
    billed: dict[str, Any] | None = None,
    gross_estimate: str | None = None,
) -> None:
    if source == "read model":
        console.print(
            "[yellow]from the read model: Temporal no longer has this order "
            "(closed, past the namespace's retention)[/yellow]"
        )
    elif source != "temporal":
        console.print(
            f"[yellow]from the {source} (start one: orderflow worker); "
            "the order's own view may be further along[/yellow]"
        )
    console.print(
        f"[bold]{state.order_id}[/bold]  {state.status.value}  "
        f"customer {state.customer_id} via {state.channel}  "
        f"goods net {order_total(state) or '?'} {state.currency}"
        + (f"  (escalation level {state.escalation_level})" if state.escalation_level else "")
    )
    if gross_estimate is not None and not billed:
        console.print(
            f"gross est. {gross_estimate} {state.currency} incl. shipping and tax "
            "(at most: the dearest shipping; the invoice bills what ships)"
        )
    if state.reason:
        console.print(f"reason: {state.reason}")
    if billed:
        net_tax = f"net {billed['net']}  tax {billed['tax']}  " if billed["net"] else ""
        credited = f"  credited {billed['credited']}" if billed["credited"] != "0.00" else ""
        numbers = billed.get("invoices") or [billed["invoice_no"]]
        which = f"invoice {numbers[0]}" if len(numbers) == 1 else "invoices " + " + ".join(numbers)
        console.print(
            f"{which}: {net_tax}gross {billed['gross']} "
            f"{billed['currency']}, due {billed['due_date']}{credited}  (orderflow invoice)"
        )
    lines = Table(title="lines")
    for column in ("sku", "qty", "unit price"):
        lines.add_column(column)
    for line in state.lines:
        lines.add_row(line["sku"], str(line["quantity"]), str(line["unit_price"]))
    console.print(lines)
    if state.allocation and state.allocation.decision:
        console.print(f"routing: {state.allocation.decision.summary}")
    if state.shipments:
        parcels = Table(title="shipments")
        for column in (
            "shipment",
            "from",
            "carrier",
            "tracking",
            "cost",
            "eta",
            "state",
            "invoice",
        ):
            parcels.add_column(column)
        for s in state.shipments:
            parcels.add_row(
                s.shipment_id,
                s.warehouse,
                f"{s.carrier} {s.service}",
                s.tracking_number or "",
                str(s.shipping_cost or ""),
                str(s.estimated_delivery or ""),
                shipment_state(state, s),
                s.invoice_no or "",
            )
        console.print(parcels)
    if state.holds:
        holds = Table(title="holds")
        for column in ("hold", "needs", "reason", "released by"):
            holds.add_column(column)
        for hold in state.holds:
            holds.add_row(
                hold.type.value, hold.tier.value, hold.reason, hold.released_by or "(open)"
            )
        console.print(holds)
    if state.returns:
        rmas = Table(title="returns")
        for column in ("rma", "lines", "state", "label", "refund"):
            rmas.add_column(column)
        for rma in state.returns:
            rmas.add_row(
                rma.rma_id,
                ", ".join(f"{x.sku} x{x.quantity}" for x in rma.lines),
                rma.state,
                f"{rma.carrier or ''} {rma.tracking_number or ''}",
                str(rma.refund_amount or ""),
            )
        console.print(rmas)
    if told:
        notices = Table(title="told the customer")
        for column in ("at", "event", "to", "e-mail"):
            notices.add_column(column)
        for notice in told:
            notices.add_row(
                notice["at"][:19].replace("T", " "),
                notice["event"],
                notice["to"] or "",
                notice["state"],
            )
        console.print(notices)
    elif told is None:
        console.print("[yellow]what the customer was told: the database cannot be read[/yellow]")
    events = Table(title="history")
    for column in ("at", "status", "by", "what"):
        events.add_column(column)
    for event in state.events:
        events.add_row(
            event.at.strftime("%Y-%m-%d %H:%M:%S"), event.status.value, event.actor, event.what
        )
    console.print(events)


def check_report(result: dict[str, Any]) -> Table | str:
    """`orderflow check`: one row per violation (and per exception for a person)."""
    checked = result["checked"]
    summary = (
        f"checked {checked['orders']} orders ({checked['running']} running, "
        f"{checked['closed']} closed workflows)"
    )
    rows = [("violation", v) for v in result["violations"]]
    rows += [("exception", v) for v in result["exceptions"]]
    if not rows:
        return f"{summary}: every invariant holds"
    table = Table(title=f"{summary}: {len(result['violations'])} violation(s)")
    for column in ("kind", "order", "rule", "detail"):
        table.add_column(column)
    for kind, v in rows:
        table.add_row(kind, v["order_id"], v["rule"], v["detail"])
    return table


def bench_report(result: dict[str, Any]) -> Group:
    """`orderflow bench`: each workload, the ratios, where an order's time goes, memory."""
    m, run, ratios = result["machine"], result["run"], result["ratios"]
    table = Table(
        title=f"orderflow bench: {run['workers']} worker(s), concurrency {run['concurrency']}, "
        f"{run['rounds']} rounds of {run['per_round']}",
        caption=f"{m['cores']} cores; Temporal: {m['server']}; orders database: "
        f"{m['database']}; simulated latency: "
        f"carriers {m['carrier_latency_ms']} ms, gateway {m['gateway_latency_ms']} ms",
    )
    columns = ("workload", "per s", "by round", "p50 ms", "p95 ms", "p99 ms", "alone ms")
    for column in (
        *columns,
        "activities",
        "local",
        "wf tasks",
        "events",
        "CPU ms workers/server/client",
    ):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for kind in ("plain", "local", "orders"):
        f = result[kind]
        table.add_row(
            kind,
            str(f["per_s"]),
            " ".join(str(x) for x in f["per_s_by_round"]),
            *(str(f["latency_ms"][p]) for p in ("p50", "p95", "p99")),
            str(f["alone_ms"]),
            str(f["activities"]),
            str(f["local_activities"]),
            str(f["workflow_tasks"]),
            str(f["events"]),
            "/".join(str(round(f["cpu_ms"].get(g, 0))) for g in ("workers", "server", "client")),
        )
    ratios_line = (
        f"orders/plain [bold]{ratios['orders_per_plain']}[/bold]   "
        f"orders/local [bold]{ratios['orders_per_local']}[/bold]   "
        f"one order alone / one local baseline alone {ratios['alone_orders_per_local']}   "
        f"(rounds differ by x{ratios['median_round_spread']})\norders/local if an order's steps "
        f"cost no CPU: {ratios['orders_per_local_if_steps_were_free']} (an estimate for when "
        "the cores are the limit, two or more workers here; one worker is bound by its GIL)"
    )
    order = result["orders"]
    cpu = order.get("activity_cpu_ms", {})
    busy = order.get("cores_busy", {})
    ratios_line += (
        f"\norders kept {busy.get('workers', 0)} cores busy in the workers, "
        f"{busy.get('server', 0)} in the server, {busy.get('client', 0)} in this client "
        f"(of {result['machine']['cores']})"
    )
    steps = Table(
        title="where an order's time goes (placement to labels booked)",
        caption="steps in the order they run; between steps: the rest of its latency, mostly "
        "waiting for its first workflow task; worker CPU outside the steps (SDK, workflow code, "
        f"payload conversion and encryption): "
        f"{round(order['cpu_ms'].get('workers', 0) - sum(cpu.values()), 1)} ms per order",
    )
    steps.add_column("step")
    steps.add_column("p50 ms", justify="right")
    steps.add_column("worker CPU ms per order", justify="right")
    for name, ms in order["where_the_time_goes_ms_p50"].items():
        steps.add_row(name, str(ms), str(cpu.get(name, "")))
    memory = f"worker RSS {result['worker_rss_mb']} MB"
    if "open_orders" in result:
        o = result["open_orders"]
        memory += (
            f"; {o['orders']} open orders: {o['worker_rss_mb_before']} -> "
            f"{o['worker_rss_mb_after']} MB ({o['kb_per_open_order']} KB each; workflows "
            f"cached {o['sticky_cache_before']} -> {o['sticky_cache_after']} of at most "
            f"{o['workflow_cache_size']} per worker)"
        )
    return Group(table, ratios_line, steps, memory)


def kpi_value(unit: str, value: float | None) -> str:
    """A KPI as people read it: durations as "24h" / "5d", shares as "99.5 %"."""
    if value is None:
        return "no data yet"
    if unit == "hours":
        return format_duration(timedelta(hours=value))
    return f"{value} %"


def kpi_rows(numbers: dict[str, Any]) -> list[dict[str, Any]]:
    """Each KPI with its target, readable, and whether it is met (None: nothing measured)."""
    from activities.reports import KPIS, meets

    return [
        {
            "key": kpi.key,
            "kpi": kpi.label,
            "value": kpi_value(kpi.unit, numbers.get(kpi.key)),
            "target": ("< " if kpi.below else "> ") + kpi_value(kpi.unit, kpi.target),
            "met": meets(kpi, numbers.get(kpi.key)),
        }
        for kpi in KPIS
    ]


def kpi_report(numbers: dict[str, Any]) -> Group:
    """`orderflow report`: the KPIs against the seeds' targets, then orders by status."""
    kpis = Table(title=f"KPIs over {numbers['orders']} orders (read model)")
    for column in ("kpi", "value", "target", ""):
        kpis.add_column(column, no_wrap=column != "kpi")
    for row in kpi_rows(numbers):
        verdict = {True: "[green]met[/green]", False: "[red]missed[/red]", None: ""}[row["met"]]
        kpis.add_row(row["kpi"], row["value"], row["target"], verdict)
    statuses = Table(title="orders by status")
    statuses.add_column("status")
    statuses.add_column("orders", justify="right")
    for status, count in numbers["by_status"].items():
        statuses.add_row(status, str(count))
    statuses.add_row("[bold]total[/bold]", f"[bold]{numbers['orders']}[/bold]")
    parts: list[Any] = [kpis, statuses, f"SLA escalations: {numbers['escalations']}"]
    if "erp" in numbers:
        parts += erp_section(numbers["erp"])
    return Group(*parts)


def erp_section(erp: dict[str, Any]) -> list[Any]:
    """`orderflow report`: the ERP outbox, and every dead letter with the ERP's reason."""
    from workers.settings import get_settings

    age = erp["oldest_pending_age_hours"]
    line = (
        f"ERP handoff: {erp['pending']} pending"
        + (f" (oldest {kpi_value('hours', age)})" if age is not None else "")
        + f", {erp['delivered']} delivered, {erp['dead']} dead"
    )
    if not get_settings().erp_url and erp["pending"]:
        line += (
            " [yellow](no ERP configured, ORDERFLOW_ERP_URL: postings wait in the outbox)[/yellow]"
        )
    if not erp["dead_letters"]:
        return [line]
    dead = Table(title="ERP dead letters (orderflow erp retry ID once the cause is fixed)")
    for column in ("id", "order", "kind", "document", "gross", "tries", "refused because"):
        dead.add_column(column, no_wrap=column != "refused because")
    for d in erp["dead_letters"]:
        dead.add_row(
            str(d["id"]),
            d["order_id"],
            d["kind"],
            d["document"],
            f"{d['amount']} {d['currency']}",
            str(d["attempts"]),
            d["reason"],
        )
    return [line, dead]


def reconcile_report(result: dict[str, Any]) -> Group | str:
    """`orderflow reconcile`: clean, or one row per difference."""
    documents = ", ".join(f"{n} {kind}" for kind, n in result["documents"].items()) or "none"
    summary = (
        f"orderflow documents: {documents}; acknowledged by the ERP at {result['erp']}: "
        f"{result['acknowledged']}"
    )
    if result["ok"]:
        return f"{summary}: clean, no differences"
    table = Table(title=f"{len(result['differences'])} difference(s)")
    for column in ("problem", "order", "kind", "document", "detail"):
        table.add_column(column, no_wrap=column != "detail")
    for d in result["differences"]:
        table.add_row(d["problem"], d["order_id"], d["kind"], d["document"], d["detail"])
    return Group(summary, table)


def order_total(state: OrderState) -> Decimal | None:
    """The order's total, the same one `list` and `status` show: the validated total, else
    (an order rejected before validation finished) the sum of its lines as placed."""
    if state.total is not None:
        return state.total
    try:
        return sum(
            (Decimal(str(line["unit_price"])) * int(line["quantity"]) for line in state.lines),
            Decimal(0),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


STOPPED_OR_BILLED = frozenset(
    {
        OrderStatus.COMPLETED,
        OrderStatus.RETURN_REQUESTED,
        OrderStatus.RETURN_RECEIVED,
        OrderStatus.REFUNDED,
        OrderStatus.REJECTED,
        OrderStatus.CANCELLED,
        OrderStatus.FAILED,
    }
)
"""An order closed for billing or stopped: a parcel that never left had its label voided."""


def shipment_state(state: OrderState, shipment: Shipment) -> str:
    """What became of one parcel: delivered, lost, shipped, booked, voided (or not booked)."""
    if shipment.delivered:
        return "delivered"
    if shipment.lost:
        return "lost"
    if shipment.shipped:
        return "shipped"
    if state.status in STOPPED_OR_BILLED:
        return "voided"
    return "booked" if shipment.label_id or shipment.tracking_number else "not booked"


def state_json(
    state: OrderState,
    source: str,
    told: list[dict[str, Any]] | None = None,
    gross_estimate: str | None = None,
) -> dict[str, Any]:
    """`status --json`: the workflow's view, plus what a script should not have to work out:
    the goods' net (`total`, and the same as `goods_net`: never null when the lines have
    prices), the validation's `gross_estimate` (goods, the dearest shipping and tax; null
    before validation), each parcel's `state`, and what the customer was told
    (`customer_notices`, from the read model; null: unreadable)."""
    data = state.model_dump(mode="json")
    total = order_total(state)
    data["total"] = data["goods_net"] = None if total is None else str(total)
    data["gross_estimate"] = gross_estimate
    for shipment, dumped in zip(state.shipments, data["shipments"], strict=True):
        dumped["state"] = shipment_state(state, shipment)
    data["source"] = source
    data["customer_notices"] = told
    return data
