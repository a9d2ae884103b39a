"""Numbers the figures and the report show, computed from result tables.

Every function takes ``pyarrow.Table`` result tables (columns as in
:data:`sim.recording.SCHEMAS`) or arrays taken from them, and returns plain
numbers, arrays or dicts; nothing here draws or writes prose.  Intervals are
not made here: they come from ``summary.parquet`` (:mod:`sim.analysis.summary`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.analysis import metrics

#: The headline metrics: runs column, label, kind (how a value and a difference are written).
HEADLINE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("focal_reach_ratio", "Focal post: views ÷ author's followers", "ratio"),
    ("focal_reach_share", "Focal post: share of users reached", "share"),
    ("focal_non_follower_share", "Focal post: views from non-followers", "share"),
    ("focal_sellout_hours", "Focal product: hours to sell out", "hours"),
    ("low_follower_breakout_rate", "10–99-follower posts reaching 100× followers", "share"),
    ("median_daily_watch_min", "Median daily watch time", "min"),
    ("mean_watch_fraction", "Mean share of each video watched", "share"),
    ("views_gini", "Gini of views over posts", "gini"),
    ("following_share", "Impressions from followed accounts", "share"),
)
METRIC_INFO = {name: (label, kind) for name, label, kind in HEADLINE_METRICS}

#: The posts table's view columns, one per channel a view came through.
VIEW_SOURCES = ("views_following", "views_reshare", "views_pool", "views_explore", "views_other")

Curve = tuple[np.ndarray, np.ndarray]
"""One run's sampled curve: (time_h, value), each of shape (n_samples,)."""

Summary = dict[tuple[str, str], dict[str, Any]]
"""(ranker, metric) -> a row of ``summary.parquet`` as a dict (one sweep point's rows)."""


# --------------------------------------------------------------------------- columns and runs


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: numbers as float64 with NaN for nulls (ints without nulls kept), strings as object."""
    col = table.column(name)
    t = col.type
    if pa.types.is_integer(t) and col.null_count == 0:
        return np.asarray(col.to_numpy())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.asarray(col.to_numpy(), dtype=np.float64)
    if pa.types.is_boolean(t):
        return np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)


def runs_of(table: pa.Table) -> dict[str, tuple[str, np.ndarray]]:
    """run_id -> (ranker label, row indices), in order of first appearance."""
    run_ids = column(table, "run_id")
    rankers = column(table, "ranker")
    out: dict[str, tuple[str, np.ndarray]] = {}
    if len(run_ids) == 0:
        return out
    uniq, first, inverse = np.unique(run_ids.astype(str), return_index=True, return_inverse=True)
    for k in np.argsort(first):
        out[str(uniq[k])] = (str(rankers[first[k]]), np.flatnonzero(inverse == k))
    return out


def by_ranker(table: pa.Table) -> dict[str, list[np.ndarray]]:
    """Ranker label -> list of row-index arrays, one per run."""
    out: dict[str, list[np.ndarray]] = {}
    for label, idx in runs_of(table).values():
        out.setdefault(label, []).append(idx)
    return out


def runs_only(table: pa.Table, run_ids: set[str]) -> pa.Table:
    """The rows of ``table`` that belong to ``run_ids`` (a table without run ids as it is)."""
    if table.num_rows == 0 or "run_id" not in table.column_names:
        return table
    return table.filter(pc.is_in(table["run_id"], value_set=pa.array(sorted(run_ids), type=table["run_id"].type)))


def pair_keys(runs: pa.Table) -> list[str]:
    """Columns that pair runs across rankers: the replicate and any sweep parameters."""
    return ["replicate"] + sorted(c for c in runs.column_names if c.startswith("sweep_"))


def series(timeseries: pa.Table, kind: str, metric: str) -> pa.Table:
    """The rows of one ``kind`` ('post', 'account', 'product') and ``metric`` of the timeseries table."""
    return timeseries.filter(pc.and_(pc.equal(timeseries["kind"], kind), pc.equal(timeseries["metric"], metric)))


def as_float(x: Any) -> float:
    """A summary cell as a float: None is NaN."""
    return float("nan") if x is None else float(x)


# --------------------------------------------------------------------------- curves over time


def median_band(curves: Sequence[Curve]) -> tuple[np.ndarray, ...]:
    """(grid, median, min, max) of sampled curves (x, y), each linearly interpolated on the union of
    their x values (NaN outside a curve's own range); four arrays of shape (n_grid,)."""
    grid = np.unique(np.concatenate([x for x, _ in curves])) if curves else np.zeros(0)
    if len(grid) == 0:
        return grid, grid, grid, grid
    stack = np.vstack([_interp(x, y, grid) for x, y in curves])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN grid column is expected outside a curve
        return grid, np.nanmedian(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def _interp(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    x, y = x[order].astype(np.float64), y[order].astype(np.float64)
    if len(x) == 0:
        return np.full(len(grid), np.nan)
    out = np.interp(grid, x, y)
    return np.where((grid < x[0] - 1e-9) | (grid > x[-1] + 1e-9), np.nan, out)


def entity_curves(ts: pa.Table, entity: str, run_ids: dict[str, list[str]] | None = None) -> dict[str, list[Curve]]:
    """Ranker -> [(time_h, value) per run] for one entity (``run_ids`` is filled with the runs, same order)."""
    ent, run, rk = column(ts, "entity"), column(ts, "run_id"), column(ts, "ranker")
    t, v = column(ts, "time_h"), column(ts, "value")
    out: dict[str, list[Curve]] = {}
    for r in dict.fromkeys(map(str, run[ent == entity])):
        m = (ent == entity) & (run == r)
        out.setdefault(str(rk[m][0]), []).append((t[m], v[m]))
        if run_ids is not None:
            run_ids.setdefault(str(rk[m][0]), []).append(r)
    return out


def created_hours(posts: pa.Table | None, focal: pa.Table) -> dict[tuple[str, str], float]:
    """(run_id, entity) -> creation time of the tracked post (h from the end of warm-up)."""
    out: dict[tuple[str, str], float] = {}
    if posts is None or focal.num_rows == 0:
        return out
    tracked_ids = pa.array(sorted({int(p) for p in column(focal, "post_id")}), pa.int64())
    posts = posts.filter(pc.is_in(posts["post_id"], value_set=tracked_ids))
    post_runs = column(posts, "run_id")
    post_ids = column(posts, "post_id")
    created = column(posts, "created_at")
    lookup = {(str(r), int(p)): float(c) / 3600.0 for r, p, c in zip(post_runs, post_ids, created, strict=True)}
    for r, e, p in zip(column(focal, "run_id"), column(focal, "entity"), column(focal, "post_id"), strict=True):
        if (str(r), int(p)) in lookup:
            out[(str(r), str(e))] = lookup[(str(r), int(p))]
    return out


def curves_since_post(ts: pa.Table, entity: str, created: dict[tuple[str, str], float]) -> dict[str, list[Curve]]:
    """Ranker -> per run, the tracked post's (hours since it was posted, value) from its creation on
    (a run without a known creation time starts at its first sample)."""
    run_col, ent_col = column(ts, "run_id"), column(ts, "entity")
    t_col, v_col, rk_col = column(ts, "time_h"), column(ts, "value"), column(ts, "ranker")
    sel = ent_col == entity
    out: dict[str, list[Curve]] = {}
    for label in dict.fromkeys(map(str, rk_col[sel])):
        for run in dict.fromkeys(map(str, run_col[sel & (rk_col == label)])):
            m = sel & (run_col == run)
            t0 = created.get((run, entity), float(np.min(t_col[m])))
            x = t_col[m] - t0
            keep = x >= -1e-9
            out.setdefault(label, []).append((x[keep], v_col[m][keep]))
    return out


def medians_by_ranker(table: pa.Table, value: str, where: np.ndarray | None = None) -> dict[str, tuple[float, int]]:
    """Ranker -> (median of ``value`` over its runs' rows, number of finite values); ``where`` (n_rows,)
    picks the rows."""
    vals = column(table, value)
    rankers = column(table, "ranker")
    mask = np.ones(len(vals), bool) if where is None else where
    out = {}
    for label in sorted(set(map(str, rankers[mask]))):
        v = vals[mask & (rankers == label)].astype(np.float64)
        v = v[np.isfinite(v)]
        out[label] = (float(np.median(v)) if len(v) else float("nan"), len(v))
    return out


def median_followers(focal: pa.Table, entity: str) -> float:
    """Median followers of the tracked post's author when it was posted, over runs (NaN if unknown)."""
    if focal.num_rows == 0:
        return float("nan")
    values = column(focal, "followers_initial")[column(focal, "entity") == entity]
    values = values[np.isfinite(values.astype(float))] if len(values) else values
    return float(np.median(values)) if len(values) else float("nan")


def follower_gains(curves: dict[str, list[Curve]]) -> dict[str, tuple[float, float, int]]:
    """Ranker -> (median gain over runs, median followers at the end of warm-up, runs) of one account."""
    out = {}
    for label, runs in curves.items():
        first = [float(y[np.argmin(np.abs(x))]) for x, y in runs]
        last = [float(y[np.argmax(x)]) for x, y in runs]
        out[label] = (float(np.median(np.subtract(last, first))), float(np.median(first)), len(runs))
    return out


# --------------------------------------------------------------------------- views: channels, followers, spread


def source_shares(posts: pa.Table, impressions: pa.Table | None = None) -> dict[str, dict[str, float]]:
    """Ranker -> {segment: share of views}, summed per run then averaged over runs.

    Segments are the posts table's :data:`VIEW_SOURCES`; with a sample of impressions
    (columns ranker, channel[, tracked]) the pool share is split by stage
    (``views_pool_<s>``) in the sampled proportions (tracked posts left out: they
    are always recorded, so they would bias the sample)."""
    out: dict[str, dict[str, float]] = {}
    cols = [column(posts, c).astype(np.float64) for c in VIEW_SOURCES]
    for label, runs in by_ranker(posts).items():
        per_run = []
        for idx in runs:
            sums = np.array([c[idx].sum() for c in cols])
            total = sums.sum()
            if total > 0:
                per_run.append(sums / total)
        mean = np.mean(per_run, axis=0) if per_run else np.zeros(len(VIEW_SOURCES))
        out[label] = {c: float(v) for c, v in zip(VIEW_SOURCES, mean, strict=True)}
    if impressions is not None and impressions.num_rows:
        stage_counts = _pool_stage_counts(impressions)
        for label, shares in out.items():
            if stage_counts.get(label) and shares["views_pool"] > 0:
                out[label] = _split_pool(shares, stage_counts[label])
    return out


def _pool_stage_counts(impressions: pa.Table) -> dict[str, dict[int, int]]:
    """Ranker -> pool stage -> sampled impressions of untracked posts."""
    sample = impressions.filter(pc.starts_with(impressions["channel"], "for_you_pool_"))
    if "tracked" in sample.column_names:
        sample = sample.filter(pc.invert(pc.fill_null(sample["tracked"], False)))
    counted = sample.group_by(["ranker", "channel"]).aggregate([("channel", "count")]).to_pydict()
    out: dict[str, dict[int, int]] = {}
    for rk, ch, n in zip(counted["ranker"], counted["channel"], counted["channel_count"], strict=True):
        out.setdefault(str(rk), {})[int(str(ch).rsplit("_", 1)[1])] = int(n)
    return out


def _split_pool(shares: dict[str, float], stage_counts: dict[int, int]) -> dict[str, float]:
    """``shares`` with 'views_pool' replaced, in place of its position, by one share per stage."""
    pool = shares.pop("views_pool")
    total = sum(stage_counts.values())
    split = {f"views_pool_{st}": pool * n / total for st, n in sorted(stage_counts.items())}
    rebuilt: dict[str, float] = {}
    for key, value in shares.items():
        if key == "views_explore":
            rebuilt.update(split)
        rebuilt[key] = value
    return rebuilt


def run_slopes(posts: pa.Table, runs: list[np.ndarray]) -> list[float]:
    """Per run (row-index arrays of ``posts``): slope of log10(1+views) on log10(1+author's followers)."""
    followers, views = column(posts, "author_followers_at_post"), column(posts, "views")
    return [metrics.log_slope(followers[i], views[i]) for i in runs]


def loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(slope, intercept) of log10(y) on log10(x), both (n,) and positive; None below two distinct x."""
    lx, ly = np.log10(x), np.log10(y)
    if len(lx) < 2 or np.ptp(lx) <= 0:
        return None
    b, a = np.polyfit(lx, ly, 1)
    return float(b), float(a)


def exposure_by_creator(posts: pa.Table, idx: np.ndarray) -> np.ndarray:
    """Views summed by author over the rows ``idx`` (authors who posted); shape (n_authors,)."""
    authors = column(posts, "author_id")[idx].astype(np.int64)
    views = column(posts, "views")[idx].astype(np.float64)
    _, inv = np.unique(authors, return_inverse=True)
    return np.bincount(inv, weights=views)


def lorenz_by_run(posts: pa.Table, runs: list[np.ndarray], over: str) -> tuple[np.ndarray, float, float]:
    """Lorenz curves of views ``over`` 'posts' or 'creators', one per run: the curves (n_runs, 101),
    the mean Gini and the mean share of views held by the top 10%."""
    views = column(posts, "views").astype(np.float64)
    curves, ginis, tops = [], [], []
    for idx in runs:
        v = views[idx] if over == "posts" else exposure_by_creator(posts, idx)
        curves.append(metrics.lorenz(v)[1])
        ginis.append(metrics.gini(v))
        tops.append(metrics.top_share(v, 0.1))
    return np.vstack(curves), float(np.mean(ginis)), float(np.nanmean(tops))


# --------------------------------------------------------------------------- traffic pools


def ladder_counts(promotions: pa.Table, posts: pa.Table | None = None) -> dict[str, list[np.ndarray]]:
    """Ranker -> per run, distinct posts reaching each stage: index 0 = posted (if ``posts`` given,
    else NaN), index s+1 = stage s (reviewed at s, or promoted from s-1)."""
    out: dict[str, list[np.ndarray]] = {}
    if promotions.num_rows == 0:
        return out
    stage = column(promotions, "stage").astype(np.int64)
    pid = column(promotions, "post_id").astype(np.int64)
    promoted = column(promotions, "promoted")
    top = int(stage.max()) + 1
    posted = {run: len(idx) for run, (_, idx) in runs_of(posts).items()} if posts is not None else {}
    for run, (label, idx) in runs_of(promotions).items():
        counts = np.full(top + 2, np.nan)
        counts[0] = posted.get(run, np.nan)
        for s in range(top + 1):
            reached = set(pid[idx][stage[idx] == s].tolist())
            if s > 0:
                reached |= set(pid[idx][(stage[idx] == s - 1) & promoted[idx]].tolist())
            counts[s + 1] = len(reached)
        out.setdefault(label, []).append(counts)
    return out


def ladder_levels(counts: dict[str, list[np.ndarray]]) -> int:
    """Levels of :func:`ladder_counts` worth showing: the top levels no run reached are dropped."""
    n_levels = max(len(c) for runs in counts.values() for c in runs)
    while n_levels > 2 and all(np.nan_to_num(c[n_levels - 1]) == 0 for runs in counts.values() for c in runs):
        n_levels -= 1
    return n_levels


def ladder_band(runs: list[np.ndarray], n_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, min, max) over runs of one ranker's :func:`ladder_counts`, each (n_levels,)."""
    mat = np.vstack([np.pad(c, (0, max(0, n_levels - len(c))), constant_values=0)[:n_levels] for c in runs])
    return np.nanmedian(mat, 0), np.nanmin(mat, 0), np.nanmax(mat, 0)


def ladder_median(runs: list[np.ndarray], n_levels: int) -> np.ndarray:
    """Median over the runs with all ``n_levels`` levels (zeros without any), shape (n_levels,)."""
    mat = np.vstack([c[:n_levels] for c in runs if len(c) >= n_levels] or [np.zeros(n_levels)])
    return np.nanmedian(mat, 0)


def pool_climbs(focal: pa.Table, promotions: pa.Table, created: dict[tuple[str, str], float],
                entity: str) -> list[tuple[str, list[float], list[int]]]:
    """Per run in which the tracked post ``entity`` entered a pool: (ranker, hours since the post,
    stage reached + 1) as a step path from (0, 0) through each promotion to the run's last review."""
    paths = []
    f_run, f_ent, f_pid = column(focal, "run_id"), column(focal, "entity"), column(focal, "post_id")
    p_run, p_pid = column(promotions, "run_id"), column(promotions, "post_id")
    p_stage, p_time, p_prom = column(promotions, "stage"), column(promotions, "time_s"), column(promotions, "promoted")
    for run, ent, pid, rk in zip(f_run, f_ent, f_pid, column(focal, "ranker"), strict=True):
        if ent != entity:
            continue
        m = (p_run == run) & (p_pid == pid)
        if not m.any():
            continue
        t0 = created.get((str(run), str(ent)), 0.0)
        steps = sorted((float(t) / 3600 - t0, int(s) + 1)
                       for t, s, pr in zip(p_time[m], p_stage[m], p_prom[m], strict=True) if pr)
        xs, ys = [0.0] + [t for t, _ in steps], [0] + [s for _, s in steps]
        end = float(np.max(p_time[p_run == run])) / 3600 - t0  # the run's last pool review
        xs.append(max(end, xs[-1]))
        ys.append(ys[-1])
        paths.append((str(rk), xs, ys))
    return paths


def stage_times(climbs: list[tuple[int, float]]) -> dict[int, tuple[float, int]]:
    """Stage -> (median hours since the post it was reached, runs that reached it), from (stage, hours)."""
    out = {}
    for s in sorted({s for s, _ in climbs}):
        times = [t for s2, t in climbs if s2 == s]
        out[s] = (float(np.median(times)), len(times))
    return out


# --------------------------------------------------------------------------- products


def sellout_hours(curves: list[Curve]) -> list[float]:
    """Per run: first time (h) the inventory is at or below zero (NaN if never)."""
    out = []
    for x, y in curves:
        order = np.argsort(x)
        hit = np.flatnonzero(y[order] <= 0)
        out.append(float(x[order][hit[0]]) if len(hit) else float("nan"))
    return out


def sellouts(config: dict[str, Any], focal: pa.Table, posts: pa.Table) -> dict[str, dict[str, float]]:
    """Product -> run_id -> exact sell-out time (h from the end of warm-up), from tracked posts that sell
    the product (focal ``sellout_hours`` counts from the post)."""
    product_of = {str(e.get("name")): str(e.get("product")) for e in config.get("events") or [] if e.get("product")}
    created = created_hours(posts, focal)
    out: dict[str, dict[str, float]] = {}
    if focal.num_rows == 0:
        return out
    for run, entity, hours in zip(column(focal, "run_id"), column(focal, "entity"),
                                  column(focal, "sellout_hours"), strict=True):
        key = (str(run), str(entity))
        if str(entity) in product_of and np.isfinite(hours) and key in created:
            out.setdefault(product_of[str(entity)], {})[str(run)] = created[key] + float(hours)
    return out


def starting_stock(curves: dict[str, list[Curve]], sold: dict[str, list[Curve]]) -> float:
    """Median over runs of units in stock plus units sold at the end of warm-up: the product's stock."""
    return float(np.median([y[np.argmin(np.abs(x))] + (sold[lb][i][1][np.argmin(np.abs(sold[lb][i][0]))]
                                                       if lb in sold and i < len(sold[lb]) else 0)
                            for lb, cs in curves.items() for i, (x, y) in enumerate(cs)]))


def ranker_sellout(curves: list[Curve], run_ids: list[str], exact: dict[str, float], sold: list[Curve]
                   ) -> tuple[float, int, int, float]:
    """One ranker's product: (median sell-out hour over the runs that sold out, runs that sold out,
    runs, median units sold by the end); ``exact`` (run_id -> hours) overrides the snapshots."""
    hours = [exact.get(r, h) for r, h in zip(run_ids, sellout_hours(curves), strict=True)]
    done = [h for h in hours if np.isfinite(h)]
    sold_end = [float(y[np.argmax(x)]) for x, y in sold]
    med_sold = float(np.median(sold_end)) if sold_end else float("nan")
    return float(np.median(done)) if done else float("nan"), len(done), len(hours), med_sold


# --------------------------------------------------------------------------- one metric per run


def sweep_points(runs: pa.Table, x: str, metric: str, label: str) -> tuple[list[float], np.ndarray]:
    """One ranker's ``metric`` at each value of the swept ``x``: the values (sorted) and, per value,
    (mean, 95% CI low, high) over replicates, shape (n_values, 3)."""
    xs, ys, rk = column(runs, x), column(runs, metric), column(runs, "ranker")
    m = rk == label
    pts = sorted(set(float(v) for v in xs[m] if np.isfinite(float(v))))
    stats = np.array([metrics.mean_ci(ys[m & (xs == p)], limits=metrics.bounds(metric)) for p in pts]).reshape(-1, 3)
    return pts, stats


def constant_metrics(runs: pa.Table) -> set[str]:
    """Measure columns of ``runs`` with one value in every run that has one (a world's planted size, a
    count of planted accounts): the same under every ranker, so they say nothing about rankers."""
    out = set()
    for name in runs.column_names:
        if name.count(".") < 2:
            continue
        values = column(runs, name).astype(np.float64)
        values = values[np.isfinite(values)]
        if len(values) and np.all(values == values[0]):
            out.add(name)
    return out
