"""One metric at a time: against a swept parameter, or per ranker with every replicate."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from matplotlib.ticker import PercentFormatter

from sim.analysis import metrics, tables
from sim.report import headlines
from sim.report.figures.style import Context, count_format, finish, new_figure, run_note, styled

#: Axis unit of each metric kind.
UNITS = {"share": " (%)", "hours": " (h)", "min": " (min)", "ratio": " (× followers)"}


def sweep(runs: pa.Table, x: str, metric: str, ctx: Context, name: str | None = None) -> str:
    """``metric`` (a runs column) against a swept parameter ``x``, mean and 95% CI per ranker; returns
    the headline."""
    with styled():
        name = name or f"sweep_{x.removeprefix('sweep_')}_{metric}"
        label, kind = tables.METRIC_INFO.get(metric, (metric.replace("_", " "), "num"))
        fig, axes = new_figure()
        ax = axes[0][0]
        xs, ys = tables.column(runs, x), tables.column(runs, metric)
        change: dict[str, tuple[float, float, float, float]] = {}  # ranker -> first and last point with a mean
        for lb in ctx.ordered(list(map(str, tables.column(runs, "ranker")))):
            pts, stats = tables.sweep_points(runs, x, metric, lb)
            if not len(pts):
                continue
            color = ctx.color(lb)
            ax.plot(pts, stats[:, 0], "-o", color=color, linewidth=2.4, markersize=6, label=lb)
            ax.fill_between(pts, stats[:, 1], stats[:, 2], color=color, alpha=0.18, linewidth=0)
            ok = np.isfinite(stats[:, 0])
            if ok.sum() >= 2:
                i0, i1 = np.flatnonzero(ok)[[0, -1]]
                change[lb] = (pts[i0], stats[i0, 0], pts[i1], stats[i1, 0])
        xvals = xs[np.isfinite(xs.astype(float))].astype(float)
        if len(xvals) and xvals.min() > 0 and xvals.max() / xvals.min() >= 20:
            ax.set_xscale("log")
        yvals = ys[np.isfinite(ys.astype(float))].astype(float)
        if kind in ("ratio", "hours") and len(yvals) and yvals.min() > 0 and yvals.max() / yvals.min() >= 100:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(count_format)
        if kind == "share":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        pretty_x = x.removeprefix("sweep_").replace("_", " ")
        ax.set_xlabel(pretty_x)
        ax.set_ylabel(label + UNITS.get(kind, ""))
        ax.legend(loc="best")
        title = headlines.sweep(metric, label, kind, pretty_x, change)
        return finish(fig, ctx, name, title, run_note(ctx.replicates, metrics.MIN_REPLICATES,
                                                      "Points: mean over replicates; band: 95% t-interval"))


def by_ranker_ci(runs: pa.Table, metric: str, ctx: Context, name: str) -> str:
    """One metric per ranker: every replicate as a dot, the mean with its 95% t-interval as a bar;
    returns the headline."""
    with styled():
        fig, axes = new_figure()
        ax = axes[0][0]
        ys, rk = tables.column(runs, metric).astype(float), tables.column(runs, "ranker")
        labels = ctx.ordered(list(map(str, rk)))
        means = {}
        for i, lb in enumerate(labels):
            y = ys[(rk == lb) & np.isfinite(ys)]
            if not len(y):
                continue
            mean, lo, hi = metrics.mean_ci(y, limits=metrics.bounds(metric))
            means[lb] = mean
            color = ctx.color(lb)
            ax.scatter(np.full(len(y), i) + np.linspace(-0.12, 0.12, len(y)), y, color=color, alpha=0.55, s=22)
            ax.errorbar([i + 0.3], [mean], yerr=[[mean - lo], [hi - mean]] if np.isfinite(lo) else None, fmt="o",
                        color=color, markersize=8, capsize=6, linewidth=2.2)
        positive = ys[np.isfinite(ys) & (ys > 0)]
        if len(positive) and positive.max() / positive.min() >= 30 and (ys[np.isfinite(ys)] > 0).all():
            ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel(metric)
        note = run_note(ctx.replicates, metrics.MIN_REPLICATES, "Dots: replicates; bars: mean and 95% t-interval")
        return finish(fig, ctx, name, headlines.ranker_means(metric, means, ctx.baseline), note)
