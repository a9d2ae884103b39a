"""Follower growth of the tracked accounts over time."""

from __future__ import annotations

import pyarrow as pa
from matplotlib.ticker import MaxNLocator

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import Context, count_format, draw_bands, empty, finish, new_figure, styled


def follower_growth(timeseries: pa.Table, ctx: Context, name: str = "follower_growth") -> str:
    """Followers of tracked accounts over time, per ranker (one panel per account, at most four, two
    to a row so that each is wide enough for its legend and axis label); returns the headline, about
    the first account."""
    with styled():
        ts = tables.series(timeseries, "account", "followers")
        entities = list(dict.fromkeys(map(str, tables.column(ts, "entity"))))[:4] or ["(no tracked account)"]
        ncols = min(2, len(entities))
        fig, axes = new_figure(-(-len(entities) // ncols), ncols)
        panels = list(axes.flat)
        for spare in panels[len(entities):]:
            spare.set_visible(False)
        gains: dict[str, dict[str, tuple[float, float, int]]] = {}  # account -> ranker -> gain, start, runs
        drawn = []
        for ax, entity in zip(panels[: len(entities)], entities, strict=True):
            curves = tables.entity_curves(ts, entity)
            if not curves:
                empty(ax, "no tracked accounts")
                continue
            drawn.append(ax)
            draw_bands(ax, curves, ctx)
            gains[entity] = tables.follower_gains(curves)
            if len(entities) > 1:
                ax.set_title(f"@{entity}")
            ax.set_xlim(left=0)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # followers are whole: no repeated ticks
            ax.yaxis.set_major_formatter(count_format)
        for i, ax in enumerate(panels[: len(entities)]):
            if ax in drawn and i + ncols >= len(entities):  # no panel below it
                ax.set_xlabel("Hours since the end of warm-up (h)")
            if ax in drawn and i % ncols == 0:
                ax.set_ylabel("Followers (accounts)")
        if drawn:
            drawn[0].legend(loc="upper left")  # one legend: every panel draws the same rankers
        title = "Follower growth of tracked accounts"
        if gains:
            title = headlines.follower_growth(entities[0], gains.get(entities[0], {}))
        return finish(fig, ctx, name, title, "Lines: median across replicates; bands: min–max across replicates.")
