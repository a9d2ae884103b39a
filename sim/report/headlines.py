"""The sentence each figure states as its finding, from numbers already computed.

Every function here takes medians, shares or rows from :mod:`sim.analysis.tables`
and returns one sentence (no trailing full stop); none reads a table or draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.analysis.tables import METRIC_INFO
from sim.report.formatting import fmt_count, fmt_hours, fmt_metric, fmt_pct, fmt_times

Medians = dict[str, tuple[float, int]]
"""Ranker -> (median over runs, runs with a value)."""

# How a headline names each metric inside a sentence.
METRIC_PHRASE = {
    "focal_reach_ratio": "the focal post's views per follower",
    "focal_reach_share": "the share of users the focal post reached",
    "focal_non_follower_share": "the focal post's share of views from non-followers",
    "focal_sellout_hours": "hours to sell out",
    "low_follower_breakout_rate": "the small-creator breakout rate",
    "median_daily_watch_min": "median daily watch time",
    "mean_watch_fraction": "the share of each video watched",
    "views_gini": "the Gini of views",
    "following_share": "the share of impressions from followed accounts",
}


def join_others(parts: list[str]) -> str:
    """' vs a, b' (empty without parts): the other rankers after a headline's leading one."""
    if not parts:
        return ""
    return " vs " + ", ".join(parts)


def metric_phrase(metric: str) -> tuple[str, str]:
    """(how a sentence names ``metric``, its kind)."""
    label, kind = METRIC_INFO.get(metric, (metric, "num"))
    return METRIC_PHRASE.get(metric, label[0].lower() + label[1:]), kind


def reach(ratios: Medians, views: Medians, followers: Medians, hours: float | None) -> str:
    """The tracked post's reach under the ranker that carried it furthest (``hours`` of data after it)."""
    order = sorted(ratios, key=lambda lb: -np.nan_to_num(ratios[lb][0], nan=-1))
    if not order:
        return "Reach over time of tracked posts"
    top = order[0]
    f0 = followers.get(top, (float("nan"), 0))[0]
    after = f" in {fmt_hours(hours)}" if hours is not None else ""
    if np.isfinite(ratios[top][0]):
        title = (f"{top.capitalize()} ranker: {fmt_count(f0)}-follower post reached "
                 f"{fmt_times(ratios[top][0])} its followers{after} (median of {ratios[top][1]} runs)")
        others = [f"{fmt_times(ratios[lb][0])} under {lb}" for lb in order[1:3]]
    else:
        title = (f"{top.capitalize()} ranker: the tracked post got {fmt_count(views[top][0])} views"
                 f"{after} (median of {views[top][1]} runs)")
        others = [f"{fmt_count(views[lb][0])} under {lb}" for lb in order[1:3]]
    return title + join_others(others)


def sources(labels: list[str], shares: dict[str, dict[str, float]]) -> str:
    """Where each of the first three rankers' views come from: For You, followed accounts or other."""
    parts = []
    for i, lb in enumerate(labels):
        s = shares[lb]
        followed = s.get("views_following", 0) + s.get("views_reshare", 0)
        pools = sum(v for k, v in s.items() if k.startswith("views_pool"))
        foryou = pools + s.get("views_explore", 0)
        other = s.get("views_other", 0)
        who = f"{lb.capitalize()} ranker" if i == 0 else lb
        if foryou >= max(followed, other):
            detail = f" (traffic pools {fmt_pct(pools)})" if pools > 0 else ""
            parts.append(f"{who}: {fmt_pct(foryou)} of views come from For You{detail}")
        elif followed >= other:
            parts.append(f"{who}: {fmt_pct(followed)} from followed accounts")
        else:
            parts.append(f"{who}: {fmt_pct(other)} from other channels")
    return "; ".join(parts[:3]) if parts else "Where views come from"


def ladder(label: str, median: np.ndarray, runs: int, entity: str | None,
           climbs: list[tuple[int, float]], peaks: list[int]) -> str:
    """How few of ``label``'s posts reach the deepest pool (``median`` posts per level, (n_levels,)),
    and how far the tracked post ``entity`` climbed: (stage, hours) per promotion, ``peaks`` per run."""
    deepest = int(max((s for s in range(1, len(median)) if median[s] > 0), default=1))
    title = f"{label.capitalize()} ranker: only {median[deepest]:,.0f}"
    if np.isfinite(median[0]) and median[0] > 0:
        title += f" of {median[0]:,.0f} posts ({fmt_pct(median[deepest] / median[0])})"
    else:
        title += " posts"
    title += f" reach pool {deepest - 1}"
    title += f" (median of {runs} runs)"
    pretty = (entity or "").replace("_", " ")
    if entity is not None and climbs:
        best = max(peaks)
        typical = int(np.floor(np.median(peaks)))
        t_best = float(np.median([t for s, t in climbs if s == best]))
        k = sum(p == best for p in peaks)
        if k * 2 > len(peaks) or typical == best:
            title += f"; {pretty} reached pool {best} in {t_best:.1f} h ({k} of {len(peaks)} runs)"
        else:
            title += (f"; {pretty} peaked at pool {typical} (median run), pool {best} at best "
                      f"({k} of {len(peaks)} runs, {t_best:.1f} h)")
    elif entity is not None and peaks:
        title += f"; {pretty} was never promoted"
    return title


def follower_slopes(slopes: dict[str, tuple[float, float, float]]) -> str:
    """Whether follower count drives views more under one ranker: ranker -> (median, min, max) slope."""
    if not slopes:
        return "Views against author followers"
    if len(slopes) == 1:
        lb, (s, _, _) = next(iter(slopes.items()))
        return f"{lb.capitalize()} ranker: views grow as followers^{s:.2f} (median slope over runs)"
    order = sorted(slopes, key=lambda k: -slopes[k][0])
    hi, lo = order[0], order[-1]
    if slopes[hi][0] - slopes[lo][0] > 0.25:
        return (f"Follower count drives views under {hi} (slope {slopes[hi][0]:.2f}) far more than under "
                f"{lo} (slope {slopes[lo][0]:.2f})")
    return "Follower count shapes views alike across rankers (slopes " + ", ".join(
        f"{k} {slopes[k][0]:.2f}" for k in order) + ")"


def inequality(spread: dict[str, dict[str, float]]) -> str:
    """The ranker that concentrates views most against the least: ranker -> {gini_posts, top10_posts}."""
    if not spread:
        return "Concentration of views"
    order = sorted(spread, key=lambda k: -spread[k]["gini_posts"])
    hi = order[0]
    title = (f"{hi.capitalize()} ranker concentrates views most: the top 10% of posts take "
             f"{fmt_pct(spread[hi]['top10_posts'])} (Gini {spread[hi]['gini_posts']:.2f})")
    if len(order) > 1:
        lo = order[-1]
        title += f" vs {fmt_pct(spread[lo]['top10_posts'])} under {lo} (Gini {spread[lo]['gini_posts']:.2f})"
    return title


def follower_growth(entity: str, gains: dict[str, tuple[float, float, int]]) -> str:
    """The account's follower gain under each ranker: ranker -> (median gain, median start, runs)."""
    order = sorted(gains, key=lambda k: -gains[k][0])
    if not order:
        return "Follower growth of tracked accounts"
    top = order[0]
    gain, start, n = gains[top]
    rel = f" ({fmt_times((start + gain) / start)} its start)" if start > 0 else ""
    title = f"@{entity} gained {gain:+,.0f} followers{rel} under {top} (median of {n} runs)"
    return title + join_others([f"{gains[lb][0]:+,.0f} under {lb}" for lb in order[1:3]])


def inventory(entity: str, stock: float, per: list[tuple[str, float, int, int, float]], end: float) -> str:
    """Whether and how fast the product sold out: per ranker (label, median sell-out hour, runs sold out,
    runs, median units sold); ``end`` is the last hour observed."""
    pretty = entity.replace("_", " ").capitalize()
    sold_out = [p for p in per if p[2] > 0]
    if sold_out:
        fast = min(sold_out, key=lambda p: p[1])
        fact = f"{pretty} sold out {fmt_hours(fast[1])} into the run under {fast[0]} ({fast[2]} of {fast[3]} runs)"
        rest = [f"{fmt_count(p[4])} of {stock:,.0f} units sold under {p[0]}" for p in per if p[2] == 0]
        return fact + join_others(rest[:2])
    order = sorted(per, key=lambda p: -np.nan_to_num(p[4]))
    best = order[0]
    return (f"{pretty} did not sell out: {fmt_count(best[4])} of {stock:,.0f} units sold by "
            f"{fmt_hours(end)} under {best[0]} (median of {best[3]} runs)"
            + join_others([f"{fmt_count(p[4])} under {p[0]}" for p in order[1:3]]))


def sweep(metric: str, label: str, kind: str, pretty_x: str,
          change: dict[str, tuple[float, float, float, float]]) -> str:
    """How ``metric`` moves across the sweep under the ranker it moves most: ranker -> (x0, y0, x1, y1)."""
    if not change:
        return f"{label} against {pretty_x}"
    lb = max(change, key=lambda k: abs(change[k][3] - change[k][1]))
    x0, y0, x1, y1 = change[lb]
    verb = "rises" if y1 > y0 else "falls" if y1 < y0 else "stays"
    phrase = METRIC_PHRASE.get(metric, label)
    return (f"{phrase[0].upper() + phrase[1:]} {verb} from {fmt_metric(y0, kind)} to "
            f"{fmt_metric(y1, kind)} as {pretty_x} goes {x0:g} → {x1:g} under {lb}")


def ranker_means(metric: str, means: dict[str, float], baseline: str) -> str:
    """One metric's mean under the first other ranker against the baseline's."""
    if len(means) < 2 or baseline not in means:
        return metric
    other = next(lb for lb in means if lb != baseline)
    a, b = means[other], means[baseline]
    ratio = f" ({a / b:,.1f}x)" if b and np.isfinite(a / b) and a / b > 0 else ""
    return f"{metric}: {a:,.3g} under {other} against {b:,.3g} under {baseline}{ratio}"


def differences(others: list[str], baseline: str, rows: list[dict[str, Any]], shown: list[str],
                total: int, significant: list[dict[str, Any]], min_pairs: int) -> str:
    """How many headline metrics differ from the baseline (or, below ``min_pairs`` pairs, the first
    mean difference), then the first that does, in headline order: the experiment's focal story."""
    comp = " and ".join(others)
    pairs = max((r["n"] for r in rows), default=0)
    if pairs < min_pairs:
        title = (f"{comp.capitalize()} vs {baseline}, paired by replicate: n = {pairs}, too few replicates "
                 f"for intervals (at least {min_pairs}); mean differences only")
        first = next((r for r in rows if r["metric"] in shown and np.isfinite(r["mean"])), None)
        if first is not None:
            phrase, kind = metric_phrase(first["metric"])
            title += f"; {phrase} {fmt_metric(first['mean'], kind, True)}"
    else:
        title = (f"{comp.capitalize()} vs {baseline}, paired by replicate: {len(significant)} of {total} "
                 f"headline metrics differ (95% CI excludes zero)")
    if significant:
        r = significant[0]
        phrase, kind = metric_phrase(r["metric"])
        title += f"; {phrase} {fmt_metric(r['mean'], kind, True)}"
        if len(others) > 1:
            title += f" ({r['ranker']})"
    return title


def bench_scaling(rows: list[dict]) -> str:
    """``sim bench --scaling``: throughput at the largest world against the smallest, and peak memory."""
    flat = rows[-1]["impressions_per_s"] / max(rows[0]["impressions_per_s"], 1)
    return (f"Engine throughput at {int(rows[-1]['users']):,} users is {flat:.2f}x that at "
            f"{int(rows[0]['users']):,}; peak memory {rows[-1]['peak_rss_mb']:,.0f} MB")

