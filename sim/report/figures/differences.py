"""Paired differences: each ranker minus the baseline, per replicate, with the summary's intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.lines
import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sim.analysis import metrics, tables
from sim.analysis import summary as summaries
from sim.report import headlines
from sim.report.figures.style import FIGSIZE, Context, empty, finish, styled
from sim.report.formatting import fmt_metric

#: Axis unit of a difference of each metric kind.
UNITS = {"share": " pp", "hours": " h", "min": " min", "ratio": "×"}


def forest(runs: pa.Table, ctx: Context, summary: tables.Summary | None = None,
           metric_names: Sequence[str] | None = None, name: str = "paired_differences") -> str:
    """Paired differences (ranker − baseline, per replicate) of headline metrics with bootstrap 95% CIs
    from ``summary`` (:func:`sim.analysis.summary.summary_rows` of ``summary.parquet``; computed from
    ``runs`` as the runner does when None), so the figure prints the intervals the summary and the
    report print.  Returns the headline.

    One row per metric, each on its own axis (units differ); the interval is
    written out on the right.  Below :data:`sim.analysis.metrics.MIN_REPLICATES` pairs there are no intervals
    and the headline counts nothing."""
    with styled():
        labels = ctx.ordered(list(map(str, tables.column(runs, "ranker"))))
        baseline = ctx.baseline if ctx.baseline in labels else (labels[-1] if labels else "")
        if summary is None:
            summary = summaries.seeded_summary(runs, labels, baseline, ctx.seed)
        rows = summaries.paired_differences(runs, labels, baseline, summary, metric_names)
        shown = [m for m in dict.fromkeys(r["metric"] for r in rows)
                 if any(r["n"] > 0 and np.isfinite(r["mean"]) for r in rows if r["metric"] == m)]
        others = [lb for lb in labels if lb != baseline]
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        if not shown:
            empty(fig.subplots(), "needs two rankers with paired replicates")
            return finish(fig, ctx, name, "No paired differences to show")
        grid = fig.subplots(len(shown), 2, squeeze=False, width_ratios=[2.0, 1.15], gridspec_kw={"wspace": 0.01})
        for (ax, tax), metric in zip(grid, shown, strict=True):
            _metric_row(ax, tax, metric, [_row(rows, lb, metric) for lb in others], others, ctx)
        if len(others) > 1:
            handles = [matplotlib.lines.Line2D([], [], color=ctx.color(lb), marker="o", linewidth=2, label=lb)
                       for lb in others]
            grid[0][0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=len(others))
        total, significant = summaries.differences_shown(rows, shown, others)
        title = headlines.differences(others, baseline, rows, shown, total, significant, metrics.MIN_REPLICATES)
        pairs = max((r["n"] for r in rows), default=0)
        bars = (f"bars: 95% percentile-bootstrap CI (2,000 resamples, the experiment's bootstrap stream, seed "
                f"{ctx.seed}; as in summary.parquet)" if pairs >= metrics.MIN_REPLICATES else
                f"no intervals below {metrics.MIN_REPLICATES} replicates")
        return finish(fig, ctx, name, title, f"Dots: mean of per-replicate differences (ranker − {baseline}); "
                      f"{bars}. Shares in percentage points (pp).")


def _row(rows: list[dict[str, Any]], label: str, metric: str) -> dict[str, Any] | None:
    """The difference row of one ranker and metric, if it has a mean."""
    r = next((r for r in rows if r["ranker"] == label and r["metric"] == metric), None)
    return None if r is None or r["n"] == 0 or not np.isfinite(r["mean"]) else r


def _metric_row(ax: Any, tax: Any, metric: str, rows: list[dict[str, Any] | None], others: list[str],
                ctx: Context) -> None:
    """One metric: a dot and interval per ranker on ``ax`` (symmetric about zero), the numbers on ``tax``."""
    mlabel, kind = tables.METRIC_INFO.get(metric, (metric.replace("_", " "), "num"))
    scale = 100.0 if kind == "share" else 1.0
    ax.axvline(0, color="#444444", linewidth=1.2)
    tax.axis("off")
    span = 0.0
    for j, (lb, r) in enumerate(zip(others, rows, strict=True)):
        if r is None:
            continue
        lo = r["lo"] if np.isfinite(r["lo"]) else r["mean"]
        hi = r["hi"] if np.isfinite(r["hi"]) else r["mean"]
        ax.errorbar([r["mean"] * scale], [-j], xerr=[[(r["mean"] - lo) * scale], [(hi - r["mean"]) * scale]],
                    fmt="o", color=ctx.color(lb), markersize=8, capsize=4, linewidth=2.2)
        span = max(span, abs(lo * scale), abs(hi * scale))
        ci = f"  [{fmt_metric(r['lo'], kind, True)}, {fmt_metric(r['hi'], kind, True)}]" \
            if np.isfinite(r["lo"]) else ""
        tax.text(0.02, (-j + len(others) - 0.5) / len(others), fmt_metric(r["mean"], kind, True) + ci,
                 transform=tax.transAxes, ha="left", va="center", fontsize=11, color=ctx.color(lb),
                 fontweight="bold")
    ax.set_yticks([])
    ax.set_ylim(-len(others) + 0.4, 0.6)
    ax.set_ylabel(mlabel, rotation=0, ha="right", va="center", fontsize=11.5)
    ax.grid(axis="y", visible=False)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="x", labelsize=10)
    span = span * 1.12 if span > 0 else 1.0
    ax.set_xlim(-span, span)
    unit = UNITS.get(kind, "")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: f"{v:+g}{u}" if v else "0"))
