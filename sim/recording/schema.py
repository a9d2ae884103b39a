"""The record schema: every result table's columns and every scenario measure, declared once.

``SCHEMAS`` maps each table to its columns: (name, Arrow type, unit, meaning); ``MEASURES`` maps
each kind of scenario entity to its metrics and their meanings.  ``python -m sim schema --results``
prints both; :func:`make_table` builds tables that conform to them.  Tables hold simulated times
only (seconds from the end of warm-up, or hours where named so), never wall-clock values, so a seed
reproduces them byte for byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis import metrics

#: One column of a table: (name, Arrow type, unit, meaning).
Column = tuple[str, pa.DataType, str, str]

KEYS: list[Column] = [
    ("run_id", pa.string(), "", "run identifier: <ranker>[-p<sweep point>]-r<replicate>; sweeps add "
                                "sweep_<key> columns to every table"),
    ("ranker", pa.string(), "", "ranker label from the experiment file"),
    ("replicate", pa.int32(), "", "replicate index (rankers of one replicate share world and arrivals)"),
]

FOCAL: list[Column] = [
    ("followers_initial", pa.int64(), "accounts", "author's followers when the post was made"),
    ("views", pa.int64(), "impressions", "views of the post (= unique viewers: nobody sees a post twice)"),
    ("reach_ratio", pa.float64(), "", "views / initial followers"),
    ("reach_share", pa.float64(), "", "unique viewers / active users"),
    ("non_follower_share", pa.float64(), "", "share of views from users not following the author at post time"),
    ("followers_final", pa.int64(), "accounts", "author's followers at the horizon"),
    ("sellout_hours", pa.float64(), "h", "time from the post to its product's sell-out (null: none)"),
    ("purchases", pa.int64(), "units", "purchases made from the post"),
    ("max_stage", pa.int32(), "", "highest traffic-pool stage reached (-1: never in a pool)"),
    ("hours_to_1k", pa.float64(), "h", "time from the post to 1,000 views (null: never)"),
    ("hours_to_10k", pa.float64(), "h", "time from the post to 10,000 views (null: never)"),
    ("hours_to_100k", pa.float64(), "h", "time from the post to 100,000 views (null: never)"),
]

HEADLINE: list[Column] = [
    ("users", pa.int64(), "users", "active users in the world"),
    ("posts", pa.int64(), "posts", "posts made (warm-up included)"),
    ("impressions", pa.int64(), "impressions", "impressions served (warm-up included)"),
    ("mean_watch_fraction", pa.float64(), "", "mean share of a post watched per impression"),
    ("like_rate", pa.float64(), "", "likes per view"),
    ("comment_rate", pa.float64(), "", "comments per view"),
    ("share_rate", pa.float64(), "", "shares per view"),
    ("follow_rate", pa.float64(), "", "new follows per view"),
    ("median_daily_watch_min", pa.float64(), "min", "median watch time over user-days with a session"),
    ("mean_daily_watch_min", pa.float64(), "min", "mean watch time over user-days with a session"),
    ("mean_daily_budget_min", pa.float64(), "min", "mean session budget over user-days with a session"),
    ("budget_used_share", pa.float64(), "", "watch time / session budget (below 1: feeds ran out)"),
    ("following_share", pa.float64(), "", "share of impressions from followed accounts (following + reshare)"),
    ("pool_share", pa.float64(), "", "share of impressions from For You traffic pools"),
    ("views_gini", pa.float64(), "", "Gini of views over posts"),
    ("creator_exposure_gini", pa.float64(), "", "Gini of views over accounts that posted"),
    ("never_reshared_share", pa.float64(), "", "share of posts never reshared"),
    ("views_median_over_mean", pa.float64(), "", "median / mean views over posts at least 48 h old"),
    ("views_bottom95_mean", pa.float64(), "impressions", "mean views of the 95% least viewed posts at least "
                                                         "48 h old"),
    ("views_tail_hill", pa.float64(), "", "Hill estimate of the views tail exponent from the top 5% of posts at "
                                          "least 48 h old (about 1: the top holds most views)"),
    ("first_day_view_share", pa.float64(), "", "views in the first 24 h / views at the horizon, over posts at "
                                               "least 5 days old (or the oldest)"),
    ("top_quarter_creator_post_share", pa.float64(), "", "share of posts made by the most active 25% of posters"),
    ("views_followers_slope", pa.float64(), "", "slope of log views on log author followers, over posts"),
    ("low_follower_breakout_rate", pa.float64(), "",
     "share of posts by 10-99-follower authors reaching >= 100x their followers in views"),
    ("low_follower_posts", pa.int64(), "posts", "posts by 10-99-follower authors"),
]

SCHEMAS: dict[str, list[Column]] = {
    "runs": KEYS + HEADLINE + [(f"focal_{n}", t, u, f"primary focal post: {m}") for n, t, u, m in FOCAL],
    "focal": KEYS + [("entity", pa.string(), "", "tracked post (event name)"),
                     ("post_id", pa.int64(), "", "post id"), ("author_id", pa.int64(), "", "author's user id")]
    + FOCAL,
    "posts": KEYS + [
        ("post_id", pa.int64(), "", "post id (ids increase with creation time)"),
        ("author_id", pa.int64(), "", "author's user id"),
        ("author_followers_at_post", pa.int32(), "accounts", "author's followers when posting"),
        ("created_at", pa.float64(), "s", "simulated creation time (negative: warm-up)"),
        ("topic", pa.string(), "", "micro-community"),
        ("quality", pa.float32(), "sd", "latent quality (standard normal over the population)"),
        ("authenticity", pa.float32(), "", "1 = real, 0 = retouched"),
        ("length_s", pa.float32(), "s", "post length"),
        ("format", pa.string(), "", "how it was made, from world.formats (null: none; planted multi-topic "
                                    "accounts' posts only)"),
        ("event", pa.string(), "", "scenario event name (null: background post)"),
        ("product", pa.string(), "", "product the post sells (null: none)"),
        ("views", pa.int32(), "impressions", "views"),
        ("views_first_day", pa.int32(), "impressions", "views in the post's first 24 h"),
        ("likes", pa.int32(), "", "likes"), ("comments", pa.int32(), "", "comments"),
        ("shares", pa.int32(), "", "shares (reshares to followers)"),
        ("follows", pa.int32(), "", "follows of the author from this post"),
        ("purchases", pa.int32(), "units", "purchases from this post"),
        ("views_in_stock", pa.int32(), "impressions", "views while the post's product had stock (0: no product)"),
        ("completions", pa.int32(), "", "views watched to the completion threshold"),
        ("watch_s", pa.float64(), "s", "total watch time"),
        ("views_following", pa.int32(), "impressions", "views through the following channel"),
        ("views_reshare", pa.int32(), "impressions", "views through reshares"),
        ("views_pool", pa.int32(), "impressions", "views through For You traffic pools"),
        ("views_explore", pa.int32(), "impressions", "views through For You interest retrieval"),
        ("views_other", pa.int32(), "impressions", "views through other channels (sound, baselines)"),
        ("sound", pa.int32(), "", "sound id (null: none)"),
        ("parent", pa.int64(), "", "post this one is a derivative of (duet, 'use this sound'; null: original)"),
        ("depth", pa.int16(), "", "derivative steps from the sound's original post"),
        ("derivatives", pa.int32(), "posts", "derivative posts made from this post"),
        ("bought_likes", pa.int32(), "", "likes bought for the post (not in likes)"),
    ],
    "measures": KEYS + [
        ("kind", pa.string(), "", "account (planted) | account_formats (planted, world.formats) | sound (named) | "
                                  "sounds (all named) | product | products (all products) | topic | listening"),
        ("entity", pa.string(), "", "name from the experiment file"),
        ("metric", pa.string(), "", "see MEASURES in sim.recording (python -m sim schema --results)"),
        ("value", pa.float64(), "", "value at the horizon (null: undefined, e.g. no duet yet)"),
    ],
    "promotions": KEYS + [
        ("post_id", pa.int64(), "", "post reviewed"),
        ("time_s", pa.float64(), "s", "simulated time of the review"),
        ("stage", pa.int8(), "", "stage reviewed (0 = first pool)"),
        ("impressions", pa.int32(), "impressions", "pool impressions at that stage"),
        ("score", pa.float64(), "", "smoothed engagement score"),
        ("threshold", pa.float64(), "", "promotion threshold (running quantile at the stage)"),
        ("promoted", pa.bool_(), "", "moved to the next stage"),
        ("early_stop", pa.bool_(), "", "retired at the early look: its first impressions scored in the bottom "
                                       "early_stop_share (impressions: the early look's, not a full batch)"),
    ],
    "timeseries": KEYS + [
        ("time_h", pa.float64(), "h", "simulated time"),
        ("entity", pa.string(), "", "tracked post, account or product name"),
        ("kind", pa.string(), "", "post | account | product"),
        ("metric", pa.string(), "", "views, views_pool, views_following, likes, shares, purchases, followers, "
                                     "inventory, sold, sellouts, restocks"),
        ("value", pa.float64(), "", "value at that time (cumulative counters)"),
    ],
    "summary": [
        ("ranker", pa.string(), "", "ranker label"),
        ("metric", pa.string(), "", "a numeric column of runs.parquet"),
        ("n", pa.int32(), "runs", "replicates with a value"),
        ("mean", pa.float64(), "", "mean over replicates"),
        ("ci_low", pa.float64(), "", "95% t-interval, lower bound"),
        ("ci_high", pa.float64(), "", "95% t-interval, upper bound"),
        ("median", pa.float64(), "", "median over replicates"),
        ("baseline", pa.string(), "", "ranker the paired difference is taken against (null: none)"),
        ("diff_mean", pa.float64(), "", "mean paired difference (this ranker - baseline, same replicate)"),
        ("diff_ci_low", pa.float64(), "", "95% percentile-bootstrap interval of the mean difference, lower"),
        ("diff_ci_high", pa.float64(), "", "95% percentile-bootstrap interval of the mean difference, upper"),
        ("point_diff_mean", pa.float64(), "", "sweeps with baseline_point: mean paired difference versus the "
                                               "same ranker at the baseline point (same replicate)"),
        ("point_diff_ci_low", pa.float64(), "", "its 95% bootstrap interval, lower"),
        ("point_diff_ci_high", pa.float64(), "", "its 95% bootstrap interval, upper"),
        ("point_rel_mean", pa.float64(), "", "mean paired relative change (value / value at the baseline "
                                              "point - 1)"),
        ("point_rel_ci_low", pa.float64(), "", "its 95% bootstrap interval, lower"),
        ("point_rel_ci_high", pa.float64(), "", "its 95% bootstrap interval, upper"),
    ],
    "claims": [
        ("claim", pa.int32(), "", "index of the [[claims]] table in the experiment file"),
        ("metric", pa.string(), "", "a runs.parquet column or a <kind>.<entity>.<metric> measure"),
        ("subject", pa.string(), "", "ranker label, 'a - b' (paired difference) or 'a / b' (paired ratio)"),
        ("point", pa.int32(), "", "sweep point index the claim is judged at (-1: no sweep)"),
        ("statistic", pa.string(), "", "median | mean | min | max | share_of_replicates | ci_low | ci_high | "
                                       "point_rel_mean | point_rel_ci_low | point_rel_ci_high"),
        ("compare", pa.string(), "", ">= | <= | > | <"),
        ("threshold", pa.float64(), "", "the value the statistic is compared with"),
        ("value", pa.float64(), "", "the statistic over the subject's replicates (null: not measured)"),
        ("ci_low", pa.float64(), "", "95% interval of the statistic, lower: a median's from order statistics, "
                                     "a share_of_replicates' exact binomial, otherwise the mean's (point_rel_*: "
                                     "of the relative change); null for min / max, below 5 replicates, and for a "
                                     "median below 6"),
        ("ci_high", pa.float64(), "", "the same interval, upper"),
        ("n", pa.int32(), "runs", "replicates used"),
        ("verdict", pa.string(), "", "pass | fail | not measured (metric absent or without values) | "
                                     "too few replicates (an interval statistic below 5)"),
        ("sentence", pa.string(), "", "what the claim shows, from the experiment file"),
    ],
    "impressions": KEYS + [
        ("time_s", pa.float64(), "s", "start of the tick window the impression was served in"),
        ("user_id", pa.int64(), "", "viewer"), ("post_id", pa.int64(), "", "post"),
        ("channel", pa.string(), "", "following | reshare | for_you_explore | for_you_pool_<s> | sound | other"),
        ("position", pa.int32(), "", "index of the impression in its session"),
        ("watch_fraction", pa.float32(), "", "share watched"),
        ("liked", pa.bool_(), "", ""), ("commented", pa.bool_(), "", ""), ("shared", pa.bool_(), "", ""),
        ("followed", pa.bool_(), "", ""), ("purchased", pa.bool_(), "", ""),
        ("tracked", pa.bool_(), "", "impression of a tracked post (always recorded)"),
    ],
}


def field(name: str, dtype: pa.DataType, unit: str, meaning: str) -> pa.Field:
    """A column's Arrow field with its meaning and unit in the field metadata (``description`` and
    ``unit``), so ``pyarrow.parquet.read_schema`` shows what a column is without this package."""
    return pa.field(name, dtype, metadata={b"description": meaning.encode(), b"unit": unit.encode()})


def sweep_field(column: str, dtype: pa.DataType) -> pa.Field:
    """The field of a ``sweep_<key>`` column (see ``sim.batch.plan.sweep_columns``)."""
    return field(column, dtype, "", "the sweep point's value of the experiment key this column is named after "
                                    "(dots and brackets as underscores)")


def schema(table: str) -> pa.Schema:
    """``SCHEMAS[table]`` as an Arrow schema, each field carrying its description and unit."""
    return pa.schema([field(*column) for column in SCHEMAS[table]])


def make_table(table: str, columns: dict[str, Any]) -> pa.Table:
    """Build a table of ``SCHEMAS[table]`` from columns (arrays or scalars broadcast)."""
    sch = schema(table)
    n = max((len(v) for v in columns.values() if isinstance(v, np.ndarray | list | pa.Array)), default=1)
    arrays = []
    for f in sch:
        value = columns.get(f.name)
        if isinstance(value, pa.Array):
            arrays.append(value.cast(f.type))
        elif isinstance(value, np.ndarray | list):
            arrays.append(pa.array(value, type=f.type, from_pandas=True))
        else:  # one value for every row (the run keys): repeated by Arrow, not as a Python list
            arrays.append(pa.repeat(pa.scalar(value, type=f.type, from_pandas=True), n))
    return pa.Table.from_arrays(arrays, schema=sch)


#: Scenario measures per kind of entity: metric -> meaning.  Each becomes a row of the
#: ``measures`` table and a ``<kind>.<entity>.<metric>`` metric of ``summary.parquet``.
MEASURES: dict[str, dict[str, str]] = {
    "account": {
        "followers_built": "followers the world was built with (planted ones, bought ones included)",
        "followers_start": "followers at t=0, after the warm-up (bought ones included: what users see)",
        "followers_end": "followers at the horizon",
        "follower_growth": "followers_end / followers_start",
        "posts": "posts made after t=0",
        "views": "views of those posts",
        "views_per_post": "views / posts",
        "views_per_follower": "views / followers_start (real followers only)",
        "core_view_share": "share of those views by users whose main interest is the post's topic",
        "main_topic_share": "share of its posts in its most used topic (a listening creator's mix narrows)",
    },
    "accounts": {
        "planted": "planted accounts in the run",
        "views": "views of all planted accounts' posts made after t=0 (a paired sweep's change in it pools "
                 "several accounts' changes into one per replicate)",
        "followers_end": "their followers at the horizon, summed",
    },
    "account_formats": {
        "main_format_share": "share of a planted multi-topic account's posts in its most used format "
                             "(world.formats; a listening creator's mix narrows)",
    },
    "sound": {
        "posts": "posts using the sound (its original included)",
        "derivative_posts": "posts made as derivatives of a post with the sound",
        "views": "views of every post using the sound",
        "derivative_view_share": "share of the sound's views on derivative posts",
        "derivatives_by_others": "derivative posts by accounts other than the artist",
        "tree_depth": "deepest derivative chain (derivative of a derivative ...)",
        "hours_to_first_duet": "time from the original to the first derivative by another account",
        "unique_listeners": "users who watched any post using the sound",
        "listeners_via_others_share": "share of listeners who first heard it on another account's post",
    },
    "product": {
        "sold": "units sold", "sellouts": "times stock ran out", "restocks": "restocks made",
        "hours_to_sellout": "time from the product's first post to its first sell-out",
        "sold_following": "units sold through the following channel (and reshares)",
        "sold_for_you": "units sold through For You (pools, retrieval, exploration)",
        "sold_sound": "units sold through sound pages", "sold_other": "units sold through other channels",
        "non_follower_share": "share of units bought by viewers not following the seller",
    },
    "sounds": {
        "named": "scenario sounds in the run",
        "median_listeners": "median unique listeners over scenario sounds",
        "top_decile_via_others": "share of the top-decile scenario sounds by listeners whose listeners came "
                                 "mostly (> half) through other accounts' posts",
    },
    "listening": {
        "listener_views_per_post": "median over listening planted accounts of their views per post",
        "steady_views_per_post": "median over the planted accounts with topic mixes that do not listen",
        "ratio": "listener_views_per_post / steady_views_per_post",
        "listener_views_per_post_late": "as listener_views_per_post, over the posts made in the last week "
                                        "that are at least a day old (where the learning has got to)",
        "steady_views_per_post_late": "as steady_views_per_post, over the same late posts",
        "ratio_late": "listener_views_per_post_late / steady_views_per_post_late",
        "steady_best_views_per_post": "median over the steady accounts of their views per post (whole run) "
                                      "had every post drawn from their mixes earned what their posts on "
                                      "their best-fitting topic, in their best format, earned",
        "best_fit_ratio": "steady_best_views_per_post / steady_views_per_post: what posting only its best "
                          "topic in its best format would have given a steady creator, post for post (not "
                          "counting the followers better posts would win)",
    },
    "topic": {
        "creators_first_week": "accounts that posted in the topic in the first 7 days after t=0",
        "creators_last_week": "accounts that posted in the topic in the last 7 days before the horizon",
        "creator_growth": "creators_last_week / creators_first_week",
        "inspired": "users who started posting in the topic after engaging with it (experts breed experts)",
        "core_view_share": "share of the topic's views by users whose main interest it is",
    },
    "products": {
        "sold": "units sold over every product",
        "sellouts": "sell-outs over every product", "restocks": "restocks over every product",
        "non_follower_share": "share of units bought by viewers not following the seller",
        "conversion_comment_slope": "OLS slope of conversion (purchases per view while in stock) on "
                                    "log(1 + comments), per view, over product posts with at least "
                                    f"{metrics.CONVERSION_MIN_VIEWS} views in stock: the comment count a "
                                    "viewer sees (a post's wider audience has less interest, which pulls "
                                    "the slope down, not up)",
        "product_posts": f"product posts with at least {metrics.CONVERSION_MIN_VIEWS} views in stock",
    },
}


def none_if_nan(x: float | None) -> float | None:
    """A cell value: ``None`` (null) where ``x`` is missing or not finite."""
    return None if x is None or not np.isfinite(x) else float(x)


def rows_to_columns(rows: list[dict[str, Any]], table: str) -> dict[str, list[Any]]:
    """Rows (dicts of the same keys) as columns for :func:`make_table`; with no rows, an empty
    column for each of ``table``'s columns after the run keys."""
    if not rows:
        return {name: [] for name, _, _, _ in SCHEMAS[table][len(KEYS):]}
    return {k: [r[k] for r in rows] for k in rows[0]}
