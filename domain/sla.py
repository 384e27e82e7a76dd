"""Durations for SLA timers, written as "4h", "30m", "2s", "1d" or "1h30m"."""

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse "4h", "30m", "2s", "1h30m" or a number of seconds.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return timedelta(seconds=float(cleaned))
    parts = _PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration (use e.g. 4h, 30m, 2s, 1h30m)")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def format_duration(value: timedelta) -> str:
    """A duration as people configure it: hours up to 72h ("24h", "48h", "1h30m", "3m"),
    days with hours beyond ("5d", "14d", "3d12h"). Never "1 day, 0:00:00"."""
    seconds = round(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = ""
    units: tuple[tuple[str, int], ...] = (("h", 3600), ("m", 60), ("s", 1))
    if seconds >= 72 * 3600:
        out, seconds = f"{seconds // 86400}d", seconds % 86400
        units = (("h", 3600), ("m", 60))
    for unit, size in units:
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out
