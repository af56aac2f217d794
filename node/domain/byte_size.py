"""A number of bytes in the unit people read it in (B, KB, MB, GB). Pure.

One stepping for every place that shows a size: ``barnplan status`` and the operators'
overview page, each formatting the number in its own language."""

from __future__ import annotations

UNITS = ("B", "KB", "MB", "GB")


def in_units(n: int) -> tuple[float, str]:
    """``n`` bytes as (value, unit), the largest unit in which the value is at least 1
    (bytes below 1 KB stay bytes)."""
    value, unit = float(n), UNITS[0]
    for larger in UNITS[1:]:
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return value, unit
