"""The README's bench table, written by `orderflow bench --readme README.md`, never by hand.

One row per command line (a rerun of the same command replaces its row), between the markers.
"""

import datetime
import re
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench-results (rows written by `orderflow bench --readme README.md`) -->"
END = "<!-- /bench-results -->"
CPU_GROUPS = ("workers", "server", "client")
HEADER = (
    "| date | machine | command | plain /s | local /s | orders /s | orders/plain "
    "| orders/local | alone ms (plain, local, order) | order p95 ms "
    "| order CPU ms (workers, server, client) | worker CPU ms in the steps | orders/local if steps "
    "were free | worker RSS MB |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def command_line(result: dict[str, Any], defaults: dict[str, str]) -> str:
    """How to run it again: the simulated latencies when not the defaults, then the options."""
    m, run = result["machine"], result["run"]
    env = [
        f"ORDERFLOW_{key.upper()}={m[key]}"
        for key in ("carrier_latency_ms", "gateway_latency_ms")
        if m[key] != defaults[key]
    ]
    count = run["per_round"] * run["rounds"]
    options = f"--orders {count} --concurrency {run['concurrency']} --workers {run['workers']}"
    return " ".join([*env, "orderflow bench", options])


def row(result: dict[str, Any], command: str) -> str:
    m, ratios = result["machine"], result["ratios"]
    alone = ", ".join(str(result[k]["alone_ms"]) for k in ("plain", "local", "orders"))
    cells = [
        datetime.date.today().isoformat(),
        f"{m['cores']} cores, {m['database']}",
        f"`{command}`",
        str(result["plain"]["per_s"]),
        str(result["local"]["per_s"]),
        str(result["orders"]["per_s"]),
        str(ratios["orders_per_plain"]),
        str(ratios["orders_per_local"]),
        alone,
        str(result["orders"]["latency_ms"]["p95"]),
        ", ".join(str(round(result["orders"]["cpu_ms"].get(g, 0))) for g in CPU_GROUPS),
        str(round(sum(result["orders"]["activity_cpu_ms"].values()))),
        str(ratios["orders_per_local_if_steps_were_free"]),
        str(result["worker_rss_mb"]),
    ]
    return "| " + " | ".join(cells) + " |"


def write(path: Path, result: dict[str, Any], defaults: dict[str, str]) -> str:
    """Put this run's row into the README's table; returns the row."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no bench table (the markers {BEGIN} ... {END})")
    before, rest = text.split(BEGIN, 1)
    table, after = rest.split(END, 1)
    command = command_line(result, defaults)
    rows = [
        line
        for line in table.strip().splitlines()[2:]
        if line.startswith("|") and f"`{command}`" not in line
    ]
    new = row(result, command)
    rows.append(new)
    rows.sort(key=lambda line: re.sub(r"^\| [^|]+ \| [^|]+ \| ", "", line))  # by command
    path.write_text(before + BEGIN + "\n" + HEADER + "\n" + "\n".join(rows) + "\n" + END + after)
    return new
