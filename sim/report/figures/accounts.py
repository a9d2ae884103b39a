"""Follower growth of the tracked accounts over time."""

from __future__ import annotations

import pyarrow as pa

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import Context, count_format, draw_bands, empty, finish, new_figure, styled


def follower_growth(timeseries: pa.Table, ctx: Context, name: str = "follower_growth") -> str:
    """Followers of tracked accounts over time, per ranker (one panel per account, at most four);
    returns the headline, about the first account."""
    with styled():
        ts = tables.series(timeseries, "account", "followers")
        entities = list(dict.fromkeys(map(str, tables.column(ts, "entity"))))[:4] or ["(no tracked account)"]
        fig, axes = new_figure(1, len(entities))
        gains: dict[str, dict[str, tuple[float, float, int]]] = {}  # account -> ranker -> gain, start, runs
        for ax, entity in zip(axes[0], entities, strict=True):
            curves = tables.entity_curves(ts, entity)
            if not curves:
                empty(ax, "no tracked accounts")
                continue
            draw_bands(ax, curves, ctx)
            gains[entity] = tables.follower_gains(curves)
            if len(entities) > 1:
                ax.set_title(f"@{entity}")
            ax.set_xlabel("Hours since the end of warm-up (h)")
            ax.set_xlim(left=0)
            ax.yaxis.set_major_formatter(count_format)
            ax.legend(loc="upper left")
        axes[0][0].set_ylabel("Followers (accounts)")
        title = "Follower growth of tracked accounts"
        if gains:
            title = headlines.follower_growth(entities[0], gains.get(entities[0], {}))
        return finish(fig, ctx, name, title, "Lines: median across replicates; bands: min–max across replicates.")
