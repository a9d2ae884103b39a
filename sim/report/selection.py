"""Which figures a results folder gets, with the caption that says how to read each."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis import metrics
from sim.analysis.summary import summary_rows
from sim.analysis.tables import column, runs_only, sellouts, series
from sim.report import figures as plots

SWEEP_METRICS = ("focal_reach_ratio", "low_follower_breakout_rate", "views_gini", "median_daily_watch_min")

Drawn = list[tuple[str, str, str]]
"""(file stem, title, how to read it) per figure drawn."""


def reference_point(runs: pa.Table, config: dict[str, Any]) -> tuple[set[str], str] | None:
    """In a sweep, the run ids of the point the tracked-entity figures show (the file's
    ``baseline_point``, else point 0) and a sentence naming it; ``None`` without a sweep."""
    sweeps = sorted(c for c in runs.column_names if c.startswith("sweep_"))
    if not sweeps or runs.num_rows == 0:
        return None
    point = max(int(config.get("baseline_point", -1)), 0)
    ids = [str(r) for r in column(runs, "run_id")]
    mine = [i for i, r in enumerate(ids) if r.rsplit("-r", 1)[0].endswith(f"-p{point}")]
    if not mine:
        return None
    params = ", ".join(f"{c.removeprefix('sweep_')} = {column(runs, c)[mine[0]]}" for c in sweeps)
    return {ids[i] for i in mine}, f" Sweep point {point} only ({params}); the sweep figures compare the points."


def reference_values(runs: pa.Table, config: dict[str, Any]) -> dict[str, Any]:
    """In a sweep, the sweep columns' values at the reference point (see :func:`reference_point`);
    empty without a sweep."""
    reference = reference_point(runs, config)
    if reference is None:
        return {}
    ids = [str(r) for r in column(runs, "run_id")]
    first = next(i for i, r in enumerate(ids) if r in reference[0])
    return {c: runs.column(c)[first].as_py() for c in runs.column_names if c.startswith("sweep_")}


def draw(tables: dict[str, pa.Table], ctx: plots.Context, config: dict[str, Any] | None = None) -> Drawn:
    """Draw every figure that applies; return (file stem, title, how to read it).

    In a sweep, the figures of tracked posts, accounts and products show one point (see
    :func:`reference_point`): a median over points would mix worlds that differ on purpose."""
    config = config or {}
    runs = tables["runs"]
    tracked = {"ts": tables["timeseries"], "focal": tables["focal"], "posts": tables["posts"],
               "promotions": tables["promotions"]}
    at_point = ""
    reference = reference_point(runs, config)
    ref_runs = runs
    if reference is not None:
        tracked = {k: runs_only(t, reference[0]) for k, t in tracked.items()}
        at_point = reference[1]
        ref_runs = runs_only(runs, reference[0])
    out = _tracked_and_posts(tables, tracked, ctx, config, at_point)
    if len(set(map(str, column(runs, "ranker")))) >= 2:
        rows = summary_rows(tables.get("summary"), reference_values(runs, config))
        small = ctx.replicates < metrics.MIN_REPLICATES
        out.append(("paired_differences", plots.forest(ref_runs, ctx, rows or None),
                    f"Headline metrics of each ranker minus {ctx.baseline}, paired by replicate, "
                    + (f"means only: n = {ctx.replicates}, no interval below {metrics.MIN_REPLICATES} replicates."
                       if small else "with the 95% bootstrap intervals of summary.parquet; an interval that "
                       "excludes zero is a difference the replicates support.") + at_point))
    return out + _metric_figures(runs, ctx, config)


def _tracked_and_posts(tables: dict[str, pa.Table], tracked: dict[str, pa.Table], ctx: plots.Context,
                       config: dict[str, Any], at_point: str) -> Drawn:
    """The figures of tracked posts, accounts and products (at the reference point) and of all posts."""
    posts, ts = tables["posts"], tables["timeseries"]
    kinds = set(map(str, column(ts, "kind"))) if ts.num_rows else set()
    out: Drawn = []
    if "post" in kinds:
        out.append(("reach_over_time", plots.reach_over_time(tracked["ts"], tracked["focal"], tracked["posts"], ctx),
                    "Cumulative views of each tracked post since it was posted (log scale); dashed and dotted "
                    "lines mark the author's follower count and its multiples." + at_point))
    if posts.num_rows:
        out.append(("view_sources", plots.view_sources(posts, ctx, tables.get("impressions")),
                    "Where impressions come from, per ranker: followed accounts (blue) against For You "
                    "traffic pools and interest retrieval (warm colours)."))
    if tables["promotions"].num_rows:
        out.append(("pool_ladder", plots.pool_ladder(tracked["promotions"], tracked["posts"], tracked["focal"], ctx),
                    "The traffic-pool ladder: how many posts reach each stage (log scale), and when the tracked "
                    "post was promoted in each run." + at_point))
    if posts.num_rows:
        out.append(("views_vs_followers", plots.views_vs_followers(posts, ctx),
                    "Every post's views against its author's follower count (log-log); a slope near 1 means "
                    "reach is bought with followers, near 0 that content decides."))
        out.append(("inequality", plots.inequality(posts, ctx),
                    "Lorenz curves: how unequally views are spread over posts and over creators."))
    if "account" in kinds:
        out.append(("follower_growth", plots.follower_growth(tracked["ts"], ctx),
                    "Followers of the tracked accounts over time." + at_point))
    if "product" in kinds:
        sold_out = sellouts(config, tracked["focal"], tracked["posts"])
        inv = series(tracked["ts"], "product", "inventory")
        empty = bool(sold_out) or (inv.num_rows > 0 and bool((column(inv, "value") <= 0).any()))
        out.append(("inventory", plots.inventory(tracked["ts"], ctx, sold_out),
                    "Units in stock over time, per ranker" + ("; dashed lines: median sell-out time." if empty else
                                                              "; no run sold out.") + at_point))
    return out


def _metric_figures(runs: pa.Table, ctx: plots.Context, config: dict[str, Any]) -> Drawn:
    """The experiment's highlighted metrics (per ranker, or against each swept parameter), then the
    standard metrics against each swept parameter."""
    out: Drawn = []
    sweeps = sorted(c for c in runs.column_names if c.startswith("sweep_"))
    for metric in config.get("highlights") or []:
        if metric not in runs.column_names or not np.isfinite(column(runs, metric).astype(float)).any():
            continue
        stem = "highlight_" + "".join(c if c.isalnum() else "_" for c in metric)
        if sweeps:
            for x in sweeps:
                out.append((f"{stem}_{x}", plots.sweep(runs, x, metric, ctx, f"{stem}_{x}"),
                            f"Key metric {metric} against {x.removeprefix('sweep_')}: mean and 95% CI over "
                            "replicates, one line per ranker."))
        else:
            out.append((stem, plots.by_ranker_ci(runs, metric, ctx, stem),
                        f"Key metric {metric} per ranker: each replicate, and the mean with its 95% t-interval."))
    for x in sweeps:
        for metric in SWEEP_METRICS:
            if metric in runs.column_names and np.isfinite(column(runs, metric).astype(float)).any():
                name = f"sweep_{x.removeprefix('sweep_')}_{metric}"
                out.append((name, plots.sweep(runs, x, metric, ctx, name),
                            f"{metric} against the swept parameter {x.removeprefix('sweep_')}: mean and 95% CI "
                            "over replicates, one line per ranker."))
    return out
