"""Runs `orderflow bench`: server, worker processes, warm-up, interleaved rounds, report."""

import asyncio
import os
import platform
import re
import statistics
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import Progress

from activities.metrics import CPU_METRIC
from starter.bench import BENCH_SKU, WORKLOADS, Bench, Sample, summarise
from starter.stack import (
    SQLITE_PRAGMAS,
    WorkerPool,
    embedded_unless_configured,
    free_ports,
    worker_env,
)
from workers.settings import Settings

BENCH_WAREHOUSE = "BNC"
ALONE = 5  # single workflows per workload, one at a time: their median is "alone_ms"
WARM_UP = 3  # per workload and worker, before anything is measured


def seed_bench_stock(settings: Settings) -> None:
    from activities.catalog import load_catalog
    from activities.db.engine import make_engine
    from starter.demo import seed_database

    seed_database(settings)
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    # A warehouse of its own, next to the bench's customer and without a daily capacity that a
    # long run would exhaust (orders beyond it would wait as backorders, not measure speed).
    warehouse = {
        "code": BENCH_WAREHOUSE,
        "name": "bench warehouse",
        "country": "NL",
        "latitude": 52.37,
        "longitude": 4.89,
        "daily_capacity": 10_000_000,
    }
    product = {"sku": BENCH_SKU, "name": "bench item", "list_price": "1.00", "currency": "EUR"}
    stock = {"sku": BENCH_SKU, "warehouse": BENCH_WAREHOUSE, "on_hand": 10_000_000}
    load_catalog(
        engine,
        {
            "warehouses": [warehouse],
            "products": [{**product, "max_per_order": 10}],
            "stock": [stock],
        },
    )
    engine.dispose()


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the worker processes together (Linux /proc)."""
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (Linux /proc; the client: os.times)."""
    total = 0.0
    for pid in pids:
        if pid == os.getpid():
            times = os.times()
            total += times.user + times.system
            continue
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def scrape(ports: list[int], metric: str, label: str | None = None) -> dict[str, float]:
    """A metric's samples summed over the workers' Prometheus endpoints, by the value of
    `label` (one key, "" without a label). A worker that does not answer is skipped (it
    died: what it counted is lost with it, the run goes on)."""
    found: dict[str, float] = {}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                text = answer.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if not line.startswith((f"{metric}{{", f"{metric} ")):
                continue
            labels, _, value = line.rpartition(" ")
            named = re.search(rf'{label}="([^"]*)"', labels) if label else None
            key = named.group(1) if named else ""
            found[key] = found.get(key, 0.0) + float(value)
    return found


def activity_cpu(ports: list[int]) -> dict[str, float]:
    """CPU seconds each activity type has used so far in the workers: the sums of their
    `orderflow_activity_cpu` histograms (activities.metrics.StepCpu)."""
    return scrape(ports, f"{CPU_METRIC}_sum", "activity_type")


def sticky_cache(ports: list[int]) -> int:
    """Workflows the workers keep in their caches now (the SDK's gauge)."""
    return round(sum(scrape(ports, "temporal_sticky_cache_size").values()))


def _accumulate(spent: dict[str, float], was: dict[str, float], now: dict[str, float]) -> None:
    for name in now:  # a replaced worker starts from 0: never a negative share
        spent[name] = spent.get(name, 0.0) + max(now[name] - was.get(name, 0.0), 0.0)


class CpuMeter:
    """CPU per workflow, split by who spent it: the workers, the server, this client; and the
    workers' part spent inside each activity (their threads' CPU time)."""

    def __init__(self, pool: WorkerPool, server_pid: int | None) -> None:
        self._ports = pool.metrics_ports
        self._groups: dict[str, Callable[[], list[int]]] = {
            "workers": pool.pids,
            "server": lambda: [server_pid] if server_pid else [],
            "client": lambda: [os.getpid()],
        }
        self.spent: dict[str, dict[str, float]] = {}
        self.in_steps: dict[str, dict[str, float]] = {}
        self.counted: dict[str, int] = {}

    def now(self) -> tuple[dict[str, float], dict[str, float]]:
        processes = {name: cpu_seconds(pids()) for name, pids in self._groups.items()}
        return processes, activity_cpu(self._ports)

    def add(
        self, kind: str, before: tuple[dict[str, float], dict[str, float]], workflows: int
    ) -> None:
        (processes, steps), (processes_now, steps_now) = before, self.now()
        _accumulate(self.spent.setdefault(kind, {}), processes, processes_now)
        _accumulate(self.in_steps.setdefault(kind, {}), steps, steps_now)
        self.counted[kind] = self.counted.get(kind, 0) + workflows

    def per_workflow_ms(self, kind: str) -> dict[str, float]:
        return self._per_workflow(kind, self.spent)

    def steps_per_workflow_ms(self, kind: str) -> dict[str, float]:
        """Worker CPU inside each activity type, per workflow (of `kind`)."""
        steps = self._per_workflow(kind, self.in_steps)
        return {name: ms for name, ms in sorted(steps.items()) if ms > 0}

    def _per_workflow(self, kind: str, spent: dict[str, dict[str, float]]) -> dict[str, float]:
        n = max(self.counted.get(kind, 0), 1)
        return {name: round(s * 1000 / n, 1) for name, s in spent.get(kind, {}).items()}


def machine(settings: Settings) -> dict[str, Any]:
    database = settings.resolved_database_url.split(":", 1)[0]
    server = (
        f"Temporal at {settings.temporal_address}"
        if settings.temporal_address
        else "embedded `temporal server start-dev`, SQLite file (" + ", ".join(SQLITE_PRAGMAS) + ")"
    )
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "server": server,
        "database": database,
        "carrier_latency_ms": settings.carrier_latency_ms,
        "gateway_latency_ms": settings.gateway_latency_ms,
    }


async def measure(
    settings: Settings,
    pool: WorkerPool,
    server_pid: int | None,
    count: int,
    concurrency: int,
    rounds: int,
    open_orders: int,
) -> dict[str, Any]:
    from starter.demo import connect_with_retry

    client = await connect_with_retry(settings)
    bench = Bench(client, settings)
    per_round = max(1, count // rounds)
    total = len(WORKLOADS) * (per_round * rounds + ALONE + WARM_UP) + open_orders
    walls: dict[str, list[float]] = {k: [] for k in WORKLOADS}
    samples: dict[str, list[Sample]] = {k: [] for k in WORKLOADS}
    alone: dict[str, list[Sample]] = {k: [] for k in WORKLOADS}
    result: dict[str, Any] = {}
    cpu = CpuMeter(pool, server_pid)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        bar = progress.add_task("bench", total=total)

        def tick() -> None:
            progress.advance(bar)

        for kind in WORKLOADS:  # warm-up: imports, caches, connections; not measured
            await bench.batch(kind, WARM_UP, concurrency, tick)
        for r in range(rounds):  # interleaved, each round in another order: drift shows
            for kind in WORKLOADS[r % 3 :] + WORKLOADS[: r % 3]:
                progress.update(bar, description=f"round {r + 1}/{rounds}: {kind}")
                before = cpu.now()
                wall, got = await bench.batch(kind, per_round, concurrency, tick)
                cpu.add(kind, before, len(got))
                walls[kind].append(wall)
                samples[kind] += got
        for kind in WORKLOADS:
            progress.update(bar, description=f"alone: {kind}")
            for _ in range(ALONE):
                alone[kind].append(await bench.one(kind))
                tick()
        rss = rss_mb(pool.pids())
        if open_orders:
            progress.update(bar, description=f"{open_orders} open orders")
            cached = sticky_cache(pool.metrics_ports)
            await bench.batch("orders", open_orders, concurrency, tick)
            after = rss_mb(pool.pids())
            result["open_orders"] = {
                "orders": open_orders,
                "worker_rss_mb_before": rss,
                "worker_rss_mb_after": after,
                "sticky_cache_before": cached,
                "sticky_cache_after": sticky_cache(pool.metrics_ports),
                "kb_per_open_order": round((after - rss) * 1024 / open_orders, 1),
                "workflow_cache_size": settings.workflow_cache_size,
            }
    figures = {
        k: {
            **summarise(walls[k], samples[k], alone[k]),
            "cpu_ms": cpu.per_workflow_ms(k),
            "activity_cpu_ms": cpu.steps_per_workflow_ms(k),
        }
        for k in WORKLOADS
    }
    for f in figures.values():  # where the bottleneck is: cores each process group kept busy
        f["cores_busy"] = {g: round(ms * f["per_s"] / 1000, 2) for g, ms in f["cpu_ms"].items()}
    plain, local, order = figures["plain"], figures["local"], figures["orders"]
    return {
        "machine": machine(settings),
        "run": {
            "workers": len(pool.pids()),
            "concurrency": concurrency,
            "rounds": rounds,
            "per_round": per_round,
            "client": "this process (the workers are separate `orderflow worker` processes)",
        },
        **figures,
        "ratios": {
            "orders_per_plain": round(order["per_s"] / plain["per_s"], 3),
            "orders_per_local": round(order["per_s"] / local["per_s"], 3),
            "alone_orders_per_local": round(order["alone_ms"] / max(local["alone_ms"], 1), 2),
            "median_round_spread": _spread(figures),
            "orders_per_local_if_steps_were_free": _free_steps_ratio(local, order),
        },
        "worker_rss_mb": rss,
        **result,
    }


def _free_steps_ratio(local: dict[str, Any], order: dict[str, Any]) -> float:
    """What orders/local would be if an order's steps (its activities) cost no CPU at all: the
    local baseline's CPU per workflow (workers, server, client) over an order's less the CPU
    inside its activities. An estimate that holds when the machine's cores are the limit (two
    or more workers here): it bounds what making the steps cheaper can buy."""
    outside: float = sum(order["cpu_ms"].values()) - sum(order["activity_cpu_ms"].values())
    baseline: float = sum(local["cpu_ms"].values())
    return round(baseline / max(outside, 0.1), 3)


def _spread(figures: dict[str, Any]) -> float:
    """How much the rounds of one workload differ (max/min, median over workloads)."""
    spreads = [
        max(f["per_s_by_round"]) / max(min(f["per_s_by_round"]), 0.01) for f in figures.values()
    ]
    return round(float(statistics.median(spreads)), 2)


def run_bench(
    settings: Settings, count: int, concurrency: int, workers: int, rounds: int, open_orders: int
) -> dict[str, Any]:
    """The whole bench on the embedded server (or ORDERFLOW_TEMPORAL_ADDRESS's)."""
    settings = settings.model_copy(update={"task_queue": f"bench-{uuid.uuid4().hex[:8]}"})
    seed_bench_stock(settings)
    with embedded_unless_configured(settings, ui=False) as server:
        pool = WorkerPool(
            worker_env(settings),
            workers,
            settings.home / "bench-workers.log",
            metrics_ports=free_ports(workers),
        )
        pool.fill()
        pid = server.pid if server else None
        try:
            return asyncio.run(
                measure(settings, pool, pid, count, concurrency, rounds, open_orders)
            )
        finally:
            pool.stop()
