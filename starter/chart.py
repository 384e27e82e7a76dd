"""`orderflow report --chart FILE.png`: the KPIs against their targets, drawn (matplotlib, Agg)."""

from pathlib import Path
from typing import Any

from starter.orders import UserError


def draw_kpis(numbers: dict[str, Any], path: Path) -> None:
    """One panel per KPI: the measured value as a bar, the target as a dashed line.

    Green when the target is met, red when missed, an empty panel saying "no data yet" when
    nothing was measured. No display is needed (the Agg backend).

    Raises:
        UserError: the file is not a .png or cannot be written (one line).
    """
    if path.suffix.lower() != ".png":
        raise UserError(f"--chart {path}: give a file name ending in .png")
    if not path.parent.is_dir():
        raise UserError(f"--chart {path}: no such directory {path.parent}")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from activities.reports import KPIS
    from starter.render import kpi_value

    figure, axes = pyplot.subplots(1, len(KPIS), figsize=(3.2 * len(KPIS), 3.6))
    try:
        for axis, kpi in zip(axes, KPIS, strict=True):
            value = numbers.get(kpi.key)
            met = value is not None and (value < kpi.target if kpi.below else value > kpi.target)
            unit = "hours" if kpi.unit == "hours" else "%"
            top = max(kpi.target, value or 0) * 1.25 if kpi.unit == "hours" else 105.0
            if value is not None:
                axis.bar([0], [value], width=0.5, color="#2e7d32" if met else "#c62828")
            axis.axhline(kpi.target, color="#333333", linestyle="--", linewidth=1.2)
            axis.text(
                0.45,
                kpi.target,
                ("< " if kpi.below else "> ") + kpi_value(kpi.unit, kpi.target),
                va="bottom",
                ha="right",
                fontsize=8,
            )
            axis.set_xlim(-0.6, 0.6)
            axis.set_ylim(0, top or 1)
            axis.set_xticks([])
            axis.set_ylabel(unit)
            axis.set_title(kpi.label.split(" (")[0], fontsize=10)
            verdict = "" if value is None else " (met)" if met else " (missed)"
            axis.set_xlabel(kpi_value(kpi.unit, value) + verdict, fontsize=10)
        figure.suptitle(f"orderflow KPIs over {numbers.get('orders', 0)} orders vs targets")
        figure.tight_layout()
        try:
            figure.savefig(path, format="png", dpi=100)
        except OSError as error:
            raise UserError(f"--chart {path}: cannot write: {error.strerror}") from None
    finally:
        pyplot.close(figure)
