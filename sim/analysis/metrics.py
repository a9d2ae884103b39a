"""Metrics: pure functions over arrays and tables.  Nothing here plots or writes.

Intervals: :func:`mean_ci` (t, over replicates) and, for paired differences, the one bootstrap
(:func:`sim.analysis.bootstrap.bootstrap_ci`), both withheld below :data:`MIN_REPLICATES` values.
"""

from __future__ import annotations

import numpy as np

from sim.analysis.bootstrap import MIN_REPLICATES, bootstrap_ci


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, 1 = one takes all).

    >>> gini(np.array([1, 1, 1, 1]))
    0.0
    >>> round(gini(np.array([0, 0, 0, 4])), 2)
    0.75
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def lorenz(values: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve: (population share, value share), each shape ``(points,)``."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if len(x) == 0 or x.sum() == 0:
        grid = np.linspace(0, 1, points)
        return grid, grid
    cum = np.concatenate([[0.0], np.cumsum(x)]) / x.sum()
    pop = np.linspace(0, 1, len(cum))
    grid = np.linspace(0, 1, points)
    return grid, np.interp(grid, pop, cum)


def breakout_rate(views: np.ndarray, followers: np.ndarray, lo: int = 10, hi: int = 99,
                  multiple: float = 100.0) -> tuple[float, int]:
    """Share of posts by authors with ``lo``..``hi`` followers that reached ``multiple`` x their
    followers in views; returns (rate, number of such posts)."""
    sel = (followers >= lo) & (followers <= hi)
    n = int(sel.sum())
    if n == 0:
        return float("nan"), 0
    return float((views[sel] >= multiple * followers[sel]).mean()), n


def log_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log10(1 + y) on log10(1 + x)."""
    return linear_slope(np.log10(1.0 + np.asarray(x, float)), np.log10(1.0 + np.asarray(y, float)))


#: A product post enters the conversion-on-comments slope (per run and pooled) with at least this
#: many views while its product was in stock: fewer make its conversion rate mostly noise.
CONVERSION_MIN_VIEWS = 50


def linear_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x (nan with fewer than two distinct x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def share(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else float("nan")


def median_or_nan(values: list[float]) -> float:
    """Median of the values that are not nan; nan where none is (no warning)."""
    return float(np.nanmedian(values)) if not np.isnan(values).all() else float("nan")


def top_share(values: np.ndarray, top: float = 0.25) -> float:
    """Share of the total held by the top ``top`` fraction of entries."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if len(x) == 0 or x.sum() == 0:
        return float("nan")
    k = max(1, int(round(top * len(x))))
    return float(x[:k].sum() / x.sum())


def hill_exponent(values: np.ndarray, top: float = 0.05) -> float:
    """Hill estimate of the tail exponent from the top ``top`` fraction of entries.

    With ``x_1 >= ... >= x_n`` and ``k = round(top n)``: ``1 / mean(log(x_i / x_(k+1)), i <= k)``.
    About 1 for a Zipf-like tail (the top holds most of the total); larger: a thinner tail.
    NaN with fewer than 2 entries in the top or a zero threshold.

    >>> round(hill_exponent(1.0 / np.arange(1, 10_001), top=0.05), 1)
    1.0
    """
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    k = int(round(top * len(x)))
    if k < 2 or k >= len(x) or x[k] <= 0:
        return float("nan")
    return float(1.0 / np.mean(np.log(x[:k] / x[k])))


#: Posts at least this old at the horizon enter :func:`view_shape`'s shape measures: past their test
#: pool and first climbs.
SHAPE_AGE_H = 48.0
#: :func:`view_shape`'s first-day share is over posts at least this old (the oldest posts, at least
#: half the run, where the run is shorter).
FIRST_DAY_AGE_H = 120.0


def view_shape(created_at: np.ndarray, views: np.ndarray, views_first_day: np.ndarray,
               horizon_s: float) -> dict[str, float]:
    """How views spread over posts, in measures that do not grow with the world's size.

    Over posts at least ``SHAPE_AGE_H`` old at ``horizon_s`` (half the run if it is shorter), at
    least 40 of them: ``views_median_over_mean``, ``views_bottom95_mean`` (the mean of the 95% least
    viewed) and ``views_tail_hill`` (:func:`hill_exponent` of the top 5%).  Over posts at least
    ``FIRST_DAY_AGE_H`` old (else the oldest, at least half the run): ``first_day_view_share``, their
    views in their first 24 h over their views at the horizon.  NaN where there are too few posts.
    All arrays have shape ``(n_posts,)``; ``created_at`` and ``horizon_s`` in seconds.
    """
    age_h = (horizon_s - np.asarray(created_at, dtype=np.float64)) / 3600.0
    views = np.asarray(views, dtype=np.float64)
    nan = float("nan")
    out = {"views_median_over_mean": nan, "views_bottom95_mean": nan, "views_tail_hill": nan,
           "first_day_view_share": nan}
    settled = views[age_h >= min(SHAPE_AGE_H, horizon_s / 7200.0)]
    if len(settled) >= 40 and settled.sum() > 0:
        ordered = np.sort(settled)
        out["views_median_over_mean"] = float(np.median(settled) / settled.mean())
        out["views_bottom95_mean"] = float(ordered[: int(round(0.95 * len(ordered)))].mean())
        out["views_tail_hill"] = hill_exponent(settled, 0.05)
    if len(age_h):
        old = age_h >= min(FIRST_DAY_AGE_H, max(float(age_h.max()) - 12.0, horizon_s / 7200.0))
        if old.any() and views[old].sum() > 0:
            out["first_day_view_share"] = float(np.asarray(views_first_day)[old].sum() / views[old].sum())
    return out


#: A slope fitted on fewer points than this is reported as too few, not as a number.
MIN_SLOPE_POINTS = 30

#: Metrics (the last dotted part, without ``focal_``) that are proportions although their names do
#: not say so, and ones whose names say so but that may exceed 1.
_PROPORTIONS = {"top_decile_via_others"}
_NOT_PROPORTIONS = {"budget_used_share"}  # watch / budget: a session's last video may overrun it


def bounds(metric: str) -> tuple[float, float]:
    """The range a metric's true value lies in, by its name: ``(0, 1)`` for shares, rates, fractions
    and Gini coefficients; ``(-inf, inf)`` for slopes; ``(-1, inf)`` for ``max_stage``; ``(0, inf)`` for
    every other quantity (counts, times, ratios).

    >>> bounds("focal_reach_share"), bounds("product.eye_cream.sold"), bounds("views_followers_slope")
    ((0.0, 1.0), (0.0, inf), (-inf, inf))
    """
    name = metric.rsplit(".", 1)[-1].removeprefix("focal_")
    if "slope" in name:
        return -np.inf, np.inf
    if name == "max_stage":
        return -1.0, np.inf
    if name in _PROPORTIONS or (name not in _NOT_PROPORTIONS
                                and name.endswith(("_share", "_rate", "_fraction", "gini"))):
        return 0.0, 1.0
    return 0.0, np.inf


def mean_ci(values: np.ndarray, level: float = 0.95,
            limits: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float, float]:
    """Mean and t-based confidence interval over replicates (nan bounds below :data:`MIN_REPLICATES`
    finite values).

    The interval is intersected with ``limits``, the range the true mean lies in (see :func:`bounds`):
    a share's interval stays inside [0, 1] and a count's above 0.  Since the true mean is always
    inside ``limits``, the intersection covers it exactly as often as the t-interval does (Wilson
    needs counts of successes, which a mean of per-run shares is not).

    >>> mean_ci(np.array([0.99, 1.0, 0.97, 1.0, 0.9]), limits=(0.0, 1.0))[2]
    1.0
    >>> mean_ci(np.array([1.0, 2.0]))
    (1.5, nan, nan)
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if len(x) < MIN_REPLICATES:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, float(max(m - half, limits[0])), float(min(m + half, limits[1]))


def slope_or_too_few(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Least-squares slope of y on x and the number of points; nan with fewer than
    :data:`MIN_SLOPE_POINTS` finite points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    return (linear_slope(x[ok], y[ok]) if n >= MIN_SLOPE_POINTS else float("nan")), n


POINT_COLUMNS = ("point_diff_mean", "point_diff_ci_low", "point_diff_ci_high", "point_rel_mean",
                 "point_rel_ci_low", "point_rel_ci_high")


def _versus_point(sub: dict[str, list], base: dict[str, list], part: dict[str, list],
                  rng: np.random.Generator) -> dict[str, list]:
    """For each row (ranker, metric) of ``part``: the paired difference versus the same ranker at
    the baseline point, and the paired relative change (x / x_base - 1), each with a bootstrap CI."""
    def values(runs: dict[str, list], label: str, metric: str) -> dict[int, float]:
        return {rep: (np.nan if v is None else float(v)) for r, rep, v in
                zip(runs["ranker"], runs["replicate"], runs[metric], strict=True) if r == label}

    out: dict[str, list] = {k: [] for k in POINT_COLUMNS}
    for label, metric in zip(part["ranker"], part["metric"], strict=True):
        mine, theirs = values(sub, label, metric), values(base, label, metric)
        reps = sorted(set(mine) & set(theirs))
        x, base_x = np.array([mine[r] for r in reps]), np.array([theirs[r] for r in reps])
        diff = x - base_x
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = x / base_x - 1.0  # undefined (dropped) where the baseline is 0
        for name, value in zip(POINT_COLUMNS, (*bootstrap_ci(diff, rng), *bootstrap_ci(rel, rng)), strict=True):
            out[name].append(value)
    return out


def summarise(runs: dict[str, list], labels: list[str], baseline: str | None,
              rng: np.random.Generator, groups: list[str] | None = None,
              base_point: int | None = None) -> dict[str, list]:
    """Per ranker (and sweep point: the ``groups`` columns) and numeric metric of a runs table
    (as a column dict): mean, t-CI, median, and the mean paired difference versus ``baseline``
    (runs paired by replicate within a point) with a seeded bootstrap CI.  With ``base_point``
    (an index into the points in order of appearance), also each point's paired difference and
    relative change versus the same ranker at that point.  Returns the columns of the
    ``summary`` table, plus the ``groups`` columns."""
    groups = groups or []
    if groups:
        n = len(runs["ranker"])
        keys = [tuple(runs[g][i] for g in groups) for i in range(n)]
        subs = [{k: [v[i] for i in range(n) if keys[i] == point] for k, v in runs.items() if k not in groups}
                for point in dict.fromkeys(keys)]
        parts = []
        for point, sub in zip(dict.fromkeys(keys), subs, strict=True):
            part = summarise(sub, labels, baseline, rng)
            rows = len(part["ranker"])
            paired = base_point is not None and base_point < len(subs)
            part.update(_versus_point(sub, subs[base_point], part, rng) if paired  # type: ignore[index]
                        else {k: [np.nan] * rows for k in POINT_COLUMNS})
            parts.append({**part, **{g: [value] * rows for g, value in zip(groups, point, strict=True)}})
        return {k: [x for part in parts for x in part[k]] for k in parts[0]}
    skip = {"run_id", "ranker", "replicate"}
    numeric = [k for k, v in runs.items() if k not in skip
               and all(x is None or isinstance(x, int | float) for x in v)]
    out: dict[str, list] = {k: [] for k in ("ranker", "metric", "n", "mean", "ci_low", "ci_high", "median",
                                            "baseline", "diff_mean", "diff_ci_low", "diff_ci_high")}

    def values(label: str, metric: str) -> dict[int, float]:
        return {rep: (np.nan if v is None else float(v)) for r, rep, v in
                zip(runs["ranker"], runs["replicate"], runs[metric], strict=True) if r == label}

    for label in labels:
        for metric in numeric:
            mine = values(label, metric)
            x = np.array(list(mine.values()), dtype=float)
            mean, lo, hi = mean_ci(x, limits=bounds(metric))
            finite = x[np.isfinite(x)]
            diff = (np.nan, np.nan, np.nan)
            if baseline and label != baseline:
                base = values(baseline, metric)
                pairs = np.array([mine[r] - base[r] for r in sorted(set(mine) & set(base))], dtype=float)
                diff = bootstrap_ci(pairs, rng)
            row = (label, metric, len(finite), mean, lo, hi, float(np.median(finite)) if len(finite) else np.nan,
                   baseline or None, *diff)
            for key, value in zip(out, row, strict=True):
                out[key].append(value)
    return out
