"""The summary's rows and intervals, as the figures and the report read them.

Every interval the figures and the report print comes from ``summary.parquet``
(:func:`summary_rows`), made by :func:`sim.analysis.metrics.summarise` with the one bootstrap
(:mod:`sim.analysis.bootstrap`) on the experiment's ``bootstrap`` stream; where a folder has no
summary, :func:`summary_table` and :func:`seeded_summary` make the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.analysis import bootstrap, metrics
from sim.analysis.tables import HEADLINE_METRICS, Summary, as_float, column, pair_keys
from sim.recording import make_table, sweep_field


def summary_rows(summary: pa.Table | dict[str, list] | None, point: dict[str, Any] | None = None) -> Summary:
    """The rows of a summary table (``summary.parquet``, or :func:`sim.analysis.metrics.summarise` columns) at one
    sweep ``point`` (``{sweep column: value}``; None or empty: every row, for an experiment without a
    sweep), keyed by (ranker, metric)."""
    if summary is None:
        return {}
    cols = summary.to_pydict() if isinstance(summary, pa.Table) else summary
    if not cols or not cols.get("ranker"):
        return {}
    out: Summary = {}
    for i, (ranker, metric) in enumerate(zip(cols["ranker"], cols["metric"], strict=True)):
        if point and any(c in cols and cols[c][i] != v for c, v in point.items()):
            continue
        out[(str(ranker), str(metric))] = {k: v[i] for k, v in cols.items()}
    return out


def seeded_summary(runs: pa.Table, labels: Sequence[str], baseline: str, seed: int) -> Summary:
    """What ``summary.parquet`` holds for these runs (one point): for figures drawn without a results
    folder.  The same function and bootstrap stream as the runner's, so the same intervals."""
    cols = {k: v for k, v in runs.to_pydict().items() if not k.startswith("sweep_")}
    return summary_rows(metrics.summarise(cols, list(labels), baseline or None, bootstrap.generator(seed)))


def summary_table(runs: pa.Table | dict[str, list[Any]], config: dict[str, Any], seed: int) -> pa.Table:
    """The ``summary.parquet`` of these runs (a table or its columns; measure columns included), as
    the runner writes it: :func:`sim.analysis.metrics.summarise` on the experiment's bootstrap
    stream, per sweep point (the ``sweep_*`` columns).  The runner calls it too, so a folder without
    a summary gets the intervals the runner would have written."""
    columns = runs.to_pydict() if isinstance(runs, pa.Table) else runs
    labels = [str(r.get("label") or r.get("name")) for r in config.get("rankers", [])]
    groups = sorted(c for c in columns if c.startswith("sweep_"))
    base_point = int(config.get("baseline_point", -1))
    columns = metrics.summarise(columns, labels, config.get("baseline") or None, bootstrap.generator(seed),
                                groups=groups, base_point=base_point if base_point >= 0 else None)
    table = make_table("summary", columns)
    for name in groups:
        values = pa.array(columns[name])
        table = table.append_column(sweep_field(name, values.type), values)
    return table


def paired_differences(runs: pa.Table, labels: Sequence[str], baseline: str, summary: Summary,
                       metric_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Ranker minus baseline per replicate (same sweep point): the mean and bootstrap CI from
    ``summary`` (:func:`summary_rows`; null CI below :data:`sim.analysis.metrics.MIN_REPLICATES` pairs), the
    number of pairs counted from ``runs``.

    One row per (ranker, metric), rankers in ``labels`` order then metrics in order (default: the
    :data:`HEADLINE_METRICS`): ``{ranker, metric, mean, lo, hi, n}``; ``n`` is the number of pairs where
    both values exist.
    """
    names = list(metric_names) if metric_names is not None else [m for m, _, _ in HEADLINE_METRICS]
    names = [m for m in names if m in runs.column_names]
    key_cols = [column(runs, k) for k in pair_keys(runs)]
    ranker = column(runs, "ranker")

    def index(label: str) -> dict[tuple[Any, ...], int]:
        return {tuple(c[i] for c in key_cols): int(i) for i in np.flatnonzero(ranker == label)}

    base = index(baseline)
    rows = []
    for label in labels:
        if label == baseline:
            continue
        mine = index(label)
        common = [k for k in mine if k in base]
        for name in names:
            values = column(runs, name)
            diff = np.array([values[mine[k]] - values[base[k]] for k in common], dtype=np.float64)
            n = int(np.isfinite(diff).sum())
            row = summary.get((label, name), {})
            mean = as_float(row.get("diff_mean")) if n else float("nan")
            lo, hi = as_float(row.get("diff_ci_low")), as_float(row.get("diff_ci_high"))
            rows.append({"ranker": label, "metric": name, "mean": mean, "lo": lo, "hi": hi, "n": n})
    return rows


def differences_shown(rows: list[dict[str, Any]], shown: Sequence[str], others: Sequence[str]
                      ) -> tuple[int, list[dict[str, Any]]]:
    """Of the :func:`paired_differences` ``rows`` of the ``shown`` metrics and ``others`` rankers (in
    that order): how many have a mean, and those whose 95% interval excludes zero."""
    total, significant = 0, []
    for metric in shown:
        for label in others:
            r = next((r for r in rows if r["ranker"] == label and r["metric"] == metric), None)
            if r is None or r["n"] == 0 or not np.isfinite(r["mean"]):
                continue
            total += 1
            if np.isfinite(r["lo"]) and (r["lo"] > 0 or r["hi"] < 0):
                significant.append(r)
    return total, significant


def pooled_conversion_slope(posts: pa.Table, ranker: str, seed: int, min_views: int = metrics.CONVERSION_MIN_VIEWS,
                            n_boot: int = 2000) -> tuple[float, float, float, int]:
    """Conversion (purchases per view while in stock) against log(1 + comments) over every product
    post of a ranker with at least ``min_views`` views in stock, pooled over replicates: the OLS
    slope and a 95% bootstrap interval that resamples whole replicates (posts of one run are not
    independent), drawn from the experiment's ``bootstrap`` stream.  Posts without ``views_in_stock``
    (older folders) use all views.  Returns (slope, low, high, posts): the slope is nan with
    fewer than :data:`sim.analysis.metrics.MIN_SLOPE_POINTS` posts, the interval with fewer than
    :data:`sim.analysis.metrics.MIN_REPLICATES` replicates."""
    if "product" not in posts.column_names:
        return float("nan"), float("nan"), float("nan"), 0
    offered = posts["views"]
    if "views_in_stock" in posts.column_names:
        offered = pc.coalesce(posts["views_in_stock"], offered)
    keep = pc.and_(pc.and_(pc.equal(posts["ranker"], ranker), pc.is_valid(posts["product"])),
                   pc.greater_equal(offered, min_views))
    t = posts.filter(keep)
    views = offered.filter(keep).to_numpy(zero_copy_only=False).astype(float)
    x, y = np.log1p(column(t, "comments")), column(t, "purchases") / np.maximum(views, 1)
    rep = column(t, "replicate")
    slope, n = metrics.slope_or_too_few(x, y)
    reps = np.unique(rep)
    if len(reps) < metrics.MIN_REPLICATES or not np.isfinite(slope):
        return slope, float("nan"), float("nan"), n
    rows = {r: np.flatnonzero(rep == r) for r in reps}
    rng = bootstrap.generator(seed)
    boot = [metrics.linear_slope(x[idx], y[idx]) for idx in
            (np.concatenate([rows[r] for r in rng.choice(reps, len(reps))]) for _ in range(n_boot))]
    lo, hi = np.nanquantile(boot, [0.025, 0.975])
    return slope, float(lo), float(hi), len(x)
