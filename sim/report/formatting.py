"""How numbers are written in headlines, figure labels and the report (multiples, percentages, hours),
and the report's markdown tables."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def fmt_times(x: float) -> str:
    """A multiple: 1,840× / 117× / 9.3× / 0.67×."""
    if not np.isfinite(x):
        return "n/a"
    if abs(x) >= 10:
        return f"{x:,.0f}×"
    return f"{x:.1f}×" if abs(x) >= 1 else f"{x:.2f}×"


def fmt_pct(x: float) -> str:
    """A share as a percentage: 42% / 4.2% / 0.42%."""
    if not np.isfinite(x):
        return "n/a"
    p = 100 * x
    if abs(p) >= 10 or p == 0:
        return f"{p:.0f}%"
    return f"{p:.1f}%" if abs(p) >= 1 else f"{p:.2f}%"


def fmt_num(x: float, digits: int = 2) -> str:
    """A number with fewer decimals the larger it is: 1,234 / 12.3 / 1.23."""
    if not np.isfinite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def fmt_hours(x: float) -> str:
    """A duration in hours: '5.2 h', or in days from 48 h on."""
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g} h" if x < 48 else f"{x / 24:.1f} days"


def fmt_count(x: float) -> str:
    """A count with thousands separators."""
    return f"{x:,.0f}" if np.isfinite(x) else "n/a"


def fmt_metric(value: float, kind: str, signed: bool = False) -> str:
    """Format a metric value of a ``kind`` of :data:`sim.analysis.tables.HEADLINE_METRICS` (or, with
    ``signed``, a difference: shares in percentage points)."""
    if not np.isfinite(value):
        return "n/a"
    sign = "+" if signed and value > 0 else ""
    if kind == "share":
        if signed:
            return f"{sign}{fmt_num(100 * value, 1)} pp"
        return fmt_pct(value)
    if kind == "ratio":
        return sign + fmt_times(value)
    if kind == "hours":
        return f"{sign}{fmt_num(value, 1)} h"
    if kind == "min":
        return f"{sign}{fmt_num(value, 1)} min"
    return sign + fmt_num(value, 2)


def fmt_paths(paths: Iterable[str], shown: int = 5) -> str:
    """Files as a sentence names them: "`a.toml`, `b.py` and 3 more" (the first ``shown``), or
    "no files".

    >>> fmt_paths(["a.toml"]), fmt_paths([]), fmt_paths(["a", "b", "c"], shown=2)
    ('`a.toml`', 'no files', '`a`, `b` and 1 more')
    """
    paths = list(paths)
    if not paths:
        return "no files"
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(f"`{path}`" for path in paths[:shown]) + more


def changes_text(changes: Iterable[str]) -> str:
    """" with uncommitted changes to `a.toml`, `b.py`", or "" for none: what a batch run from an
    edited checkout says beside its revision (the manifest's ``git_changes``)."""
    changes = list(changes)
    return f" with uncommitted changes to {fmt_paths(changes)}" if changes else ""


def no_interval(n: int) -> str:
    """Why a cell has no interval: too few values."""
    return f"n = {n}: no interval"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines (pipes in cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines
