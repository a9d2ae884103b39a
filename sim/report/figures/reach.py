"""Reach over time: cumulative views of each tracked post since it was posted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import Context, count_format, empty, finish, new_figure, positive, primary_entity, styled


def reach_over_time(timeseries: pa.Table, focal: pa.Table, posts: pa.Table | None, ctx: Context,
                    name: str = "reach_over_time") -> str:
    """Cumulative views of each tracked post against hours since it was posted, per ranker (one panel
    per post, at most four, the focal post first); returns the headline."""
    with styled():
        ts = tables.series(timeseries, "post", "views")
        entities = list(dict.fromkeys(map(str, tables.column(ts, "entity")))) if ts.num_rows else []
        primary = primary_entity([str(e) for e in tables.column(focal, "entity")] if focal.num_rows else [], ctx)
        if primary in entities:
            entities.remove(primary)
            entities.insert(0, primary)
        entities = entities[:4] or ["(no tracked post)"]
        fig, axes = new_figure(1, len(entities), sharey=True)
        created = tables.created_hours(posts, focal)
        span: dict[str, float] = {}  # entity -> longest time observed after the post (h)
        ymax = 1.0
        for ax, entity in zip(axes[0], entities, strict=True):
            curves = tables.curves_since_post(ts, entity, created) if ts.num_rows else {}
            if not curves:
                empty(ax, "no tracked posts in this experiment")
                continue
            ends = [float(np.max(x)) for runs in curves.values() for x, _ in runs if len(x)]
            if ends:
                span[entity] = max(ends)
            ymax = _draw_medians(ax, curves, ctx, ymax)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(count_format)
            ax.set_xlabel("Hours since the post (h)")
            if len(entities) > 1:
                ax.set_title(entity.replace("_", " "))
            ax.set_xlim(left=0)
            _follower_lines(ax, tables.median_followers(focal, entity), ymax)
        axes[0][0].set_ylabel("Views (impressions, log scale)")
        axes[0][0].legend(loc="best")
        title = "Reach over time of tracked posts"
        if primary is not None:
            sel = tables.column(focal, "entity") == primary
            title = headlines.reach(tables.medians_by_ranker(focal, "reach_ratio", sel),
                                    tables.medians_by_ranker(focal, "views", sel),
                                    tables.medians_by_ranker(focal, "followers_initial", sel),
                                    span.get(primary))
        return finish(fig, ctx, name, title, "Lines: median across replicates; bands: min–max across replicates.")


def _draw_medians(ax: Any, curves: dict[str, list[tables.Curve]], ctx: Context, ymax: float) -> float:
    """Per ranker, the median curve with markers and its min-max band; returns the highest max so far."""
    for label in ctx.ordered(list(curves)):
        grid, med, lo, hi = tables.median_band(curves[label])
        color = ctx.color(label)
        ax.fill_between(grid, positive(lo), positive(hi), color=color, alpha=0.18, linewidth=0)
        ax.plot(grid, positive(med), color=color, linewidth=2.6, marker="o", markersize=3.5,
                label=f"{label} (median of {len(curves[label])})")
        ymax = max(ymax, float(np.nanmax(hi)) if len(hi) else 1.0)
    return ymax


def _follower_lines(ax: Any, followers: float, ymax: float) -> None:
    """Reference lines at the author's ``followers`` and its multiples up to the curves' height ``ymax``."""
    if not (np.isfinite(followers) and followers > 0):
        return
    for mult, style in ((1, "--"), (10, ":"), (100, ":"), (1000, ":"), (10_000, ":")):
        if followers * mult <= max(ymax, followers) * 1.5:
            ax.axhline(followers * mult, color="#444444", linestyle=style, linewidth=1.1, alpha=0.7)
            ax.annotate(f"author's {followers:,.0f}\nfollowers" if mult == 1 else f"{mult:,}×\nfollowers",
                        (1.0, followers * mult), xycoords=("axes fraction", "data"), xytext=(5, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=11,
                        color="#333333", annotation_clip=False)
