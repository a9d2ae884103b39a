"""The report's scenario-measures table: planted accounts, named sounds and products from ``summary.parquet``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis import metrics
from sim.analysis.tables import as_float
from sim.report.figures.style import Context
from sim.report.formatting import md_table, no_interval


def measures_section(summary: pa.Table | None, ctx: Context, highlights: list[str],
                     focal: set[str] | None = None, constants: set[str] | None = None) -> list[str]:
    """Scenario measures (planted accounts, named sounds, products) from ``summary.parquet``:
    per ranker and sweep point, median, mean and 95% CI over replicates, the paired difference
    versus the baseline ranker and the paired relative change versus the baseline point.  The
    experiment's ``highlights`` come first, then the measures of its ``focal`` entities (the focal post's
    account, product, sound), then the rest; ``constants`` (one value in every run) are left out."""
    if summary is None or summary.num_rows == 0:
        return []
    s = summary.to_pydict()
    sweep = sorted(c for c in s if c.startswith("sweep_"))
    dropped = (constants or set()) - set(highlights)
    idx = [i for i, m in enumerate(s["metric"]) if (m.count(".") >= 2 or m in highlights) and m not in dropped]
    if not idx:
        return []
    dropped_here = sorted({m for m in s["metric"] if m in dropped and m.count(".") >= 2})
    lines = ["## Scenario measures", "",
             "Per ranker" + (" and sweep point" if sweep else "") + ": median and mean over replicates with a "
             "95% t-interval; the paired difference versus the baseline ranker (same replicate) with a "
             "95% bootstrap interval" + ("; and the paired relative change versus the baseline sweep point"
                                          if "point_rel_mean" in s and sweep else "") +
             f"; no interval below {metrics.MIN_REPLICATES} replicates. The experiment's key metrics come first, "
             "then those of its focal post's account, product and sound."
             + (f" Left out, the same in every run: {', '.join(f'`{m}`' for m in dropped_here)}."
                if dropped_here else "") + " Metric meanings: `python -m sim schema --results`.", ""]
    header = ["measure", "ranker"] + [c.removeprefix("sweep_") for c in sweep] + ["n", "median", "mean [95% CI]",
                                                                                    "vs baseline ranker"]
    with_points = sweep and any(np.isfinite(as_float(s["point_rel_mean"][i])) for i in idx)
    if with_points:
        header.append("vs baseline point")
    rows = []
    for i in sorted(idx, key=_order(s, sweep, highlights, focal or set(), ctx.labels)):
        row = [f"`{s['metric'][i]}`", str(s["ranker"][i])] + [str(s[c][i]) for c in sweep]
        row += [str(s["n"][i]), f"{as_float(s['median'][i]):,.3g}", _interval(s, i, ""),
                _interval(s, i, "diff", signed=True)]
        if with_points:
            row.append(_interval(s, i, "point_rel", percent=True))
        rows.append(row)
    return lines + md_table(header, rows) + [""]


def _order(s: dict[str, list], sweep: list[str], highlights: list[str], focal: set[str],
           labels: tuple[str, ...]) -> Any:
    """Sort key of a summary row: highlights (in the file's order), then the focal entities' measures,
    then the rest, by metric, ranker (the file's order) and sweep point."""
    first = {m: k for k, m in enumerate(highlights)}
    order = {label: k for k, label in enumerate(labels)}

    def rank(i: int) -> tuple[Any, ...]:
        metric = s["metric"][i]
        parts = metric.split(".")
        group = 0 if metric in first else 1 if len(parts) >= 3 and parts[1] in focal else 2
        return (group, first.get(metric, 0), metric, order.get(s["ranker"][i], len(order)), [s[c][i] for c in sweep])

    return rank


def _interval(s: dict[str, list], i: int, prefix: str, signed: bool = False, percent: bool = False) -> str:
    """Row ``i``'s ``<prefix>_mean`` with its interval ('' without a mean; why none below enough values)."""
    head = f"{prefix}_" if prefix else ""
    lo, hi = as_float(s[f"{head}ci_low"][i]), as_float(s[f"{head}ci_high"][i])
    mean = as_float(s[f"{prefix}_mean" if prefix else "mean"][i])
    if not np.isfinite(mean):
        return ""
    f = (lambda v: f"{v:+.0%}") if percent else (lambda v: f"{v:+,.3g}" if signed else f"{v:,.3g}")
    if np.isfinite(lo) and np.isfinite(hi):
        return f"{f(mean)} [{f(lo)}, {f(hi)}]"
    n = int(s["n"][i] or 0)
    return f"{f(mean)} ({no_interval(n)})" if n < metrics.MIN_REPLICATES else f(mean)

