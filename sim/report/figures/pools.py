"""Traffic pools: how many posts climb each rung of the ladder, and the tracked post's climb."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import Context, count_format, empty, finish, new_figure, primary_entity, styled

Climbs = dict[str, list[tuple[int, float]]]
"""Ranker -> (stage reached + 1, hours since the post) for every promotion of the tracked post."""


def pool_ladder(promotions: pa.Table, posts: pa.Table, focal: pa.Table, ctx: Context,
                name: str = "pool_ladder") -> str:
    """Left: posts reaching each traffic-pool stage (log). Right: the tracked post's climb over time.
    Returns the headline."""
    with styled():
        counts = tables.ladder_counts(promotions, posts)
        labels = ctx.ordered(list(counts))
        fig, axes = new_figure(1, 2, width_ratios=[1.25, 1])
        ax, ax2 = axes[0]
        if not labels:
            empty(ax, "no traffic-pool decisions recorded")
            empty(ax2, "")
            return finish(fig, ctx, name, "No ranker in this experiment uses traffic pools")
        n_levels = tables.ladder_levels({lb: counts[lb] for lb in labels})
        _draw_rungs(ax, counts, labels, n_levels, ctx)
        primary = primary_entity([str(e) for e in tables.column(focal, "entity")] if focal.num_rows else [], ctx)
        paths = tables.pool_climbs(focal, promotions, tables.created_hours(posts, focal), primary) \
            if primary is not None else []
        climbs: Climbs = {}
        peaks: dict[str, list[int]] = {}  # ranker -> highest stage reached, per run with the post in a pool
        for label, xs, ys in paths:
            if len(ys) > 2:  # promoted at least once
                climbs.setdefault(label, []).extend(zip(ys[1:-1], xs[1:-1], strict=True))
            peaks.setdefault(label, []).append(ys[-1])
        if not paths:
            empty(ax2, "the tracked post never entered a traffic pool")
        else:
            _draw_climbs(ax2, paths, climbs, peaks, n_levels, primary, ctx)
        lb0 = labels[0]
        title = headlines.ladder(lb0, tables.ladder_median(counts[lb0], n_levels), len(counts[lb0]), primary,
                                 climbs.get(lb0, []), peaks.get(lb0, []))
        return finish(fig, ctx, name, title, "Bars: median across replicates, whiskers: min–max. "
                      "A post reaches stage s when it is reviewed there (or promoted from s−1).")


def _draw_rungs(ax: Any, counts: dict[str, list[np.ndarray]], labels: list[str], n_levels: int,
                ctx: Context) -> None:
    """Grouped bars: per ranker, the median posts reaching each level with min-max whiskers (log)."""
    width = 0.8 / len(labels)
    for i, lb in enumerate(labels):
        med, lo, hi = tables.ladder_band(counts[lb], n_levels)
        x = np.arange(n_levels) + (i - (len(labels) - 1) / 2) * width
        ok = med > 0
        ax.bar(x[ok], med[ok], width=width * 0.92, color=ctx.color(lb), alpha=0.9,
               label=f"{lb} (median of {len(counts[lb])})")
        ax.errorbar(x[ok], med[ok], yerr=[med[ok] - lo[ok], hi[ok] - med[ok]], fmt="none", ecolor="#333333",
                    capsize=3, linewidth=1)
        for xi, m, top in zip(x[ok], med[ok], hi[ok], strict=True):
            ax.annotate(f"{m:,.0f}", (xi, top), xytext=(0, 4), textcoords="offset points", ha="center",
                        va="bottom", fontsize=11)
    ax.set_yscale("log")
    positive = [float(v) for lb in labels for c in counts[lb] for v in c[:n_levels] if v > 0]
    floor = 10 ** np.floor(np.log10(min(positive))) if positive else 1.0
    ax.set_ylim(bottom=min(floor, 1.0) if floor <= 10 else floor)
    ax.yaxis.set_major_formatter(count_format)
    ax.set_xticks(np.arange(n_levels), ["all posts"] + [ctx.pool_label(s).replace(" · ", "\n")
                                                     for s in range(n_levels - 1)])
    ax.set_ylabel("Posts reaching the stage (count, log scale)")
    ax.set_title("How many posts climb each rung")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right")
    ax.set_ylim(top=ax.get_ylim()[1] * 3)


def _draw_climbs(ax: Any, paths: list[tuple[str, list[float], list[int]]], climbs: Climbs,
                 peaks: dict[str, list[int]], n_levels: int, primary: str | None, ctx: Context) -> None:
    """The tracked post's stage against hours since it was posted, one step line per run (jittered so
    that runs on the same path stay visible), each stage marked with its median time."""
    for k, (label, xs, ys) in enumerate(paths):
        jitter = 0.04 * (k % 5 - 2)
        ax.step(xs, np.array(ys) + jitter, where="post", color=ctx.color(label), alpha=0.75, linewidth=2)
        ax.plot(xs[1:-1], np.array(ys[1:-1]) + jitter, "o", color=ctx.color(label), markersize=6)
    ax.set_xlim(left=0)
    xmax = ax.get_xlim()[1]
    for k, (lb, pts) in enumerate(climbs.items()):
        n_runs = len(peaks.get(lb, []))
        for s, (med, reached) in tables.stage_times(pts).items():
            right = med > 0.6 * xmax
            runs_txt = (f" (median, {reached} of {n_runs} runs)" if reached > 1 else
                        f" ({reached} of {n_runs} runs)") if n_runs > 1 else ""
            ax.annotate(f"pool {s} at +{med:.1f} h{runs_txt}", (med, s), xytext=(-8 if right else 8, 10 + 16 * k),
                        textcoords="offset points", fontsize=11, color=ctx.color(lb),
                        ha="right" if right else "left", fontweight="bold")
    top_stage = n_levels - 2
    ax.set_yticks(range(top_stage + 1), [ctx.pool_label(s) for s in range(top_stage + 1)])
    ax.set_ylim(-0.4, top_stage + 0.6)
    ax.set_xlabel("Hours since the post (h)")
    ax.set_ylabel("Traffic-pool stage reached")
    ax.set_title(f"{(primary or '').replace('_', ' ').capitalize()}: its climb, per run")
