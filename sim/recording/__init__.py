"""What a run records: every result table's schema is declared here, once.

``SCHEMAS`` maps each table to its columns: (name, Arrow type, unit, meaning).
``python -m sim schema --results`` prints it; the :class:`Recorder` builds
tables that conform to it.  Tables hold simulated times only (seconds from
the end of warm-up, or hours where named so), never wall-clock values, so a
seed reproduces them byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sim.analysis import metrics
from sim.config import DAY
from sim.model.rng import streams
from sim.model.world import NO_ID
from sim.rankers.base import CHANNEL_NAMES, FOLLOWING, POOL, RESHARE, Feedback, PoolDecisions

if TYPE_CHECKING:
    from sim.config import Experiment, PlantedAccount
    from sim.engine import Simulation
    from sim.model.world import Posts, World

Column = tuple[str, pa.DataType, str, str]

LATE_WINDOW_DAYS = 7.0  # "late" listening measures: posts made in the last week, at least a day old

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
    """The field of a ``sweep_<key>`` column (see ``sim.batch.runner.sweep_columns``)."""
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


THRESHOLDS = (1_000, 10_000, 100_000)

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


class Recorder:
    """Collects one run's records; :meth:`finish` turns them into Arrow tables."""

    def __init__(self, exp: Experiment, label: str, replicate: int, world: World, posts: Posts, run_id: str):
        self.exp = exp
        self.keys = {"run_id": run_id, "ranker": label, "replicate": replicate}
        self.world = world
        self.posts = posts
        self.sample_rate = exp.recording.impression_sample_rate
        self.rng = streams(exp.seed, replicate)["recording"]
        self._promotions: list[tuple[float, PoolDecisions]] = []
        self._impressions: list[dict[str, np.ndarray]] = []
        self._series: list[tuple[float, str, str, str, float]] = []
        self.tracked_names: list[str] = []
        self.tracked_ids: list[int] = []
        self.tracked_followers: list[np.ndarray] = []  # sorted follower ids when posted
        self.tracked_nonfollower: list[int] = []
        self.tracked_hours_to: list[list[float]] = []
        self.sellout_s = np.full(len(world.products.names), np.nan)
        # Planted accounts' followers as built (planted plus bought), and at t = 0 (after warm-up).
        counts = world.follower_counts
        self.followers_built = {name: int(counts[uid]) for name, uid in world.accounts.items()}
        self.followers_t0: dict[str, int] | None = None
        self.n_impressions = 0
        self.sum_fraction = 0.0
        self.channel_counts = np.zeros(256, dtype=np.int64)
        self.tables: dict[str, pa.Table] = {}

    # ---------------------------------------------------------------- during the run

    def track_post(self, name: str, post: int, followers: np.ndarray) -> None:
        """Record every impression of ``post``; ``followers``: its author's followers when posted."""
        self.tracked_names.append(name)
        self.tracked_ids.append(post)
        self.tracked_followers.append(followers)
        self.tracked_nonfollower.append(0)
        self.tracked_hours_to.append([np.nan] * len(THRESHOLDS))

    def promotions(self, decisions: PoolDecisions, now: float) -> None:
        self._promotions.append((now, decisions))

    def sellout(self, product: int, now: float) -> None:
        self.sellout_s[product] = now

    def impressions(self, fb: Feedback, now: float) -> None:
        self.n_impressions += len(fb.post)
        self.sum_fraction += float(fb.watch_fraction.sum(dtype=np.float64))
        np.add.at(self.channel_counts, fb.channel.astype(np.int64) & 255, 1)
        is_tracked = np.zeros(len(fb.post), dtype=bool)
        for i, pid in enumerate(self.tracked_ids):
            mine = fb.post == pid
            if not mine.any():
                continue
            is_tracked |= mine
            followers = self.tracked_followers[i]
            self.tracked_nonfollower[i] += int((~np.isin(fb.user[mine], followers)).sum())
            views = int(self.posts.views[pid])
            for j, threshold in enumerate(THRESHOLDS):
                if np.isnan(self.tracked_hours_to[i][j]) and views >= threshold:
                    self.tracked_hours_to[i][j] = (now - float(self.posts.created_at[pid])) / 3600.0
        keep = is_tracked | (self.rng.random(len(fb.post)) < self.sample_rate)
        if keep.any():
            self._impressions.append({
                "time_s": np.full(int(keep.sum()), now), "user_id": fb.user[keep], "post_id": fb.post[keep],
                "channel": fb.channel[keep], "position": fb.position[keep],
                "watch_fraction": fb.watch_fraction[keep], "liked": fb.liked[keep],
                "commented": fb.commented[keep], "shared": fb.shared[keep], "followed": fb.followed[keep],
                "purchased": fb.purchased[keep], "tracked": is_tracked[keep],
            })  # fmt: skip

    def snapshot(self, sim: Simulation, now: float) -> None:
        hours = now / 3600.0
        posts = self.posts
        if self.followers_t0 is None and now >= 0:
            self.followers_t0 = {name: int(sim.state.follower_counts[uid]) for name, uid in sim.world.accounts.items()}
        for name, pid in zip(self.tracked_names, self.tracked_ids, strict=True):
            for metric in ("views", "views_pool", "views_following", "views_reshare", "likes", "shares",
                           "purchases"):
                self._series.append((hours, name, "post", metric, float(posts.cols[metric][pid])))
        for name, uid in sim.world.accounts.items():
            self._series.append((hours, name, "account", "followers", float(sim.state.follower_counts[uid])))
        products = sim.world.products
        for i, name in enumerate(products.names):
            self._series.append((hours, name, "product", "inventory", float(products.inventory[i])))
            self._series.append((hours, name, "product", "sold", float(products.sold[i])))
            self._series.append((hours, name, "product", "sellouts", float(products.sellouts[i])))
            self._series.append((hours, name, "product", "restocks", float(products.restocks[i])))

    # ---------------------------------------------------------------- at the end

    def finish(self, sim: Simulation) -> None:
        """Build every table of the run."""
        self.snapshot(sim, sim.env.now)
        self.tables["posts"] = self._posts_table()
        self.tables["promotions"] = self._promotions_table()
        self.tables["timeseries"] = self._timeseries_table()
        self.tables["impressions"] = self._impressions_table()
        focal = self._focal_rows(sim)
        self.tables["focal"] = make_table("focal", {**self.keys, **_columns(focal)})
        self.tables["runs"] = make_table("runs", {**self.keys, **self._headline(sim), **self._focal_columns(focal)})
        self.tables["measures"] = make_table("measures", {**self.keys, **_columns(self._measures(sim), "measures")})

    def _posts_table(self) -> pa.Table:
        p = self.posts
        def named(names: Any, ids: np.ndarray) -> np.ndarray:
            """The name of each id; None for NO_ID (-1 picks the None after the names)."""
            return np.asarray(list(names) + [None], dtype=object)[ids]

        cols: dict[str, Any] = {
            "post_id": np.arange(len(p)), "author_id": p.author, "author_followers_at_post": p.author_followers_at_post,
            "created_at": p.created_at, "topic": np.asarray(self.world.topics, dtype=object)[p.topic],
            "quality": p.quality, "authenticity": p.authenticity, "length_s": p.length_s,
            "format": named(self.exp.world.formats, p.format),
            "event": named([e.name for e in self.exp.events], p.event),
            "product": named(self.world.products.names, p.product),
        }  # fmt: skip
        for name in ("views", "likes", "comments", "shares", "follows", "purchases", "views_in_stock", "completions",
                     "watch_s", "views_following", "views_reshare", "views_pool", "views_explore", "views_other",
                     "depth", "derivatives", "bought_likes"):
            cols[name] = getattr(p, name)
        cols["sound"] = pa.array(p.sound, mask=p.sound < 0)
        cols["parent"] = pa.array(p.parent, mask=p.parent < 0)
        return make_table("posts", {**self.keys, **cols})

    def _promotions_table(self) -> pa.Table:
        parts = self._promotions
        if not parts:
            return make_table("promotions", {**self.keys, **{k: np.zeros(0) for k in (
                "post_id", "time_s", "stage", "impressions", "score", "threshold", "promoted")}})
        cat = {name: np.concatenate([getattr(d, name) for _, d in parts])
               for name in ("post", "stage", "impressions", "score", "threshold", "promoted")}
        times = np.concatenate([np.full(len(d.post), t) for t, d in parts])
        cat["threshold"] = np.where(np.isfinite(cat["threshold"]), cat["threshold"], np.nan)
        return make_table("promotions", {**self.keys, "post_id": cat.pop("post"), "time_s": times, **cat})

    def _timeseries_table(self) -> pa.Table:
        rows = self._series
        names = ("time_h", "entity", "kind", "metric", "value")
        cols: dict[str, Any] = {name: [r[i] for r in rows] for i, name in enumerate(names)}
        if not rows:
            cols = {k: np.zeros(0) for k in names}
        return make_table("timeseries", {**self.keys, **cols})

    def _impressions_table(self) -> pa.Table:
        names = np.asarray([CHANNEL_NAMES.get(c, f"channel_{c}") for c in range(256)], dtype=object)
        if not self._impressions:
            empty = {k: np.zeros(0) for k in ("time_s", "user_id", "post_id", "position", "watch_fraction")}
            return make_table("impressions", {**self.keys, **empty, "channel": np.zeros(0, object),
                                              **{k: np.zeros(0, bool) for k in ("liked", "commented", "shared",
                                                                                "followed", "purchased", "tracked")}})
        cols = {k: np.concatenate([part[k] for part in self._impressions]) for k in self._impressions[0]}
        codes = pa.array(cols.pop("channel").astype(np.int64) & 255)
        # Channel names by code in Arrow: a full impression log has one row per impression.
        channel = pa.array(names.tolist(), type=pa.string()).take(codes)
        return make_table("impressions", {**self.keys, **cols, "channel": channel})

    def _focal_rows(self, sim: Simulation) -> list[dict[str, Any]]:
        posts = self.posts
        users = int(sim.users.active.sum())
        stage_reached: dict[int, int] = {}
        for _, d in self._promotions:
            for pid, stage, promoted in zip(d.post, d.stage, d.promoted, strict=True):
                if int(pid) in self.tracked_ids:
                    reached = int(stage) + int(bool(promoted))
                    stage_reached[int(pid)] = max(stage_reached.get(int(pid), -1), reached)
        rows = []
        for i, (name, pid) in enumerate(zip(self.tracked_names, self.tracked_ids, strict=True)):
            author = int(posts.author[pid])
            initial = int(posts.author_followers_at_post[pid])
            views = int(posts.views[pid])
            product = int(posts.product[pid])
            sold_at = self.sellout_s[product] if product >= 0 else np.nan
            hours_to = self.tracked_hours_to[i]
            rows.append({
                "entity": name, "post_id": pid, "author_id": author, "followers_initial": initial,
                "views": views, "reach_ratio": views / initial if initial else np.nan,
                "reach_share": views / users, "non_follower_share": metrics.share(self.tracked_nonfollower[i], views),
                "followers_final": int(sim.state.follower_counts[author]),
                "sellout_hours": (sold_at - float(posts.created_at[pid])) / 3600.0 if np.isfinite(sold_at) else None,
                "purchases": int(posts.purchases[pid]), "max_stage": stage_reached.get(pid, -1),
                "hours_to_1k": _none_if_nan(hours_to[0]), "hours_to_10k": _none_if_nan(hours_to[1]),
                "hours_to_100k": _none_if_nan(hours_to[2]),
            })  # fmt: skip
        return rows

    def _measures(self, sim: Simulation) -> list[dict[str, Any]]:
        """Rows of the ``measures`` table: planted accounts, named sounds and products."""
        p = self.posts
        rows: list[dict[str, Any]] = []

        def add(kind: str, entity: str, values: dict[str, float | None]) -> None:
            assert values.keys() == MEASURES[kind].keys(), kind
            rows.extend({"kind": kind, "entity": entity, "metric": k, "value": _none_if_nan(v)}
                        for k, v in values.items())

        bought = {spec.name: spec.bought_followers for spec in self.exp.world.accounts}
        at_t0 = self.followers_t0 or self.followers_built
        for name, uid in sim.world.accounts.items():
            mine = (p.author == uid) & (p.created_at >= 0)
            views = float(p.views[mine].sum())
            followers = at_t0[name]
            end = int(sim.state.follower_counts[uid])
            topics = np.bincount(p.topic[mine], minlength=len(self.world.topics))
            add("account", name, {
                "followers_built": self.followers_built[name], "followers_start": followers, "followers_end": end,
                "follower_growth": end / followers if followers else np.nan,
                "posts": int(mine.sum()), "views": views,
                "views_per_post": views / mine.sum() if mine.any() else np.nan,
                "views_per_follower": views / (followers - bought[name]) if followers > bought[name] else np.nan,
                "core_view_share": metrics.share(float(p.views_core[mine].sum()), views),
                "main_topic_share": metrics.share(int(topics.max()), int(mine.sum())),
            })  # fmt: skip
            if uid in sim.format_mix:
                formats = np.bincount(p.format[mine & (p.format >= 0)], minlength=len(sim.exp.world.formats))
                add("account_formats", name, {"main_format_share": metrics.share(int(formats.max()),
                                                                                 int(formats.sum()))})
        if sim.world.accounts:
            mine = sim.planted[p.author] & (p.created_at >= 0)
            add("accounts", "planted", {
                "planted": len(sim.world.accounts), "views": float(p.views[mine].sum()),
                "followers_end": int(sim.state.follower_counts[sim.planted].sum()),
            })  # fmt: skip
        sounds = sim.sounds
        for name, sid in sounds.names.items():
            uses = p.sound == sid
            derived = uses & (p.parent >= 0)
            artist = int(sounds.artist[sid])
            by_others = derived & (p.author != artist)
            views = float(p.views[uses].sum())
            listeners = int(sim.listened[sorted(sounds.names.values()).index(sid)].sum())
            via_artist = int(sim.listeners_via_artist[sorted(sounds.names.values()).index(sid)])
            first = (p.created_at[by_others].min() - sounds.created_at[sid]) / 3600.0 if by_others.any() else np.nan
            add("sound", name, {
                "posts": int(uses.sum()), "derivative_posts": int(derived.sum()), "views": views,
                "derivative_view_share": metrics.share(float(p.views[derived].sum()), views),
                "derivatives_by_others": int(by_others.sum()), "tree_depth": int(p.depth[uses].max()),
                "hours_to_first_duet": first, "unique_listeners": listeners,
                "listeners_via_others_share": metrics.share(listeners - via_artist, listeners),
            })  # fmt: skip
        if len(sounds.names) >= 2:
            listeners = sim.listened.sum(axis=1).astype(np.float64)
            via_others = (listeners - sim.listeners_via_artist) / np.maximum(listeners, 1)
            top = np.argsort(-listeners, kind="stable")[: max(1, int(round(0.1 * len(listeners))))]
            add("sounds", "named", {"named": len(listeners), "median_listeners": float(np.median(listeners)),
                                    "top_decile_via_others": float((via_others[top] > 0.5).mean())})
        mixed = [a for a in self.exp.world.accounts if a.topics]
        if any(a.listen_rate > 0 for a in mixed) and any(a.listen_rate == 0 for a in mixed):
            horizon = self.exp.horizon_s
            late_from = max(0.0, horizon - LATE_WINDOW_DAYS * DAY)

            def median_views_per_post(listening: bool, own: Callable[[PlantedAccount], np.ndarray]) -> float:
                """Median over the listening (or steady) accounts of their views per post among the
                posts ``own(account)`` selects; nan where none of them made such a post."""
                values = [metrics.share(float(p.views[mine].sum()), int(mine.sum()))
                          for a in mixed if (a.listen_rate > 0) == listening for mine in (own(a),)]
                return metrics.median_or_nan(values)

            def made_in(start: float, end: float) -> Callable[[PlantedAccount], np.ndarray]:
                return lambda a: ((p.author == sim.world.accounts[a.name])
                                  & (p.created_at >= start) & (p.created_at < end))

            def best_fit_views_per_post(a: PlantedAccount) -> float:
                """Its views per post had each post it drew from its mixes (not its derivatives or
                scenario posts) earned what its posts on its best-fitting topic of its own, in its
                best format, earned on average; nan where it made none of those."""
                uid = sim.world.accounts[a.name]
                own = p.author == uid
                drawn = own & (p.event == NO_ID) & (p.parent == NO_ID)
                fit = np.where(np.isin(sim.world.topics, a.topics), sim.world.topic_fit[uid], -np.inf)
                best = drawn & (p.topic == np.argmax(fit))
                if uid in sim.world.format_fit:
                    best &= p.format == np.argmax(sim.world.format_fit[uid])
                if not best.any():
                    return np.nan
                views = p.views[own].sum() - p.views[drawn].sum() + drawn.sum() * p.views[best].mean()
                return float(views / own.sum())

            listen = median_views_per_post(True, made_in(0.0, np.inf))
            steady = median_views_per_post(False, made_in(0.0, np.inf))
            listen_late = median_views_per_post(True, made_in(late_from, horizon - DAY))
            steady_late = median_views_per_post(False, made_in(late_from, horizon - DAY))
            best = metrics.median_or_nan([best_fit_views_per_post(a) for a in mixed if a.listen_rate == 0])
            add("listening", "creators", {
                "listener_views_per_post": listen, "steady_views_per_post": steady,
                "ratio": listen / steady if steady else np.nan,
                "listener_views_per_post_late": listen_late, "steady_views_per_post_late": steady_late,
                "ratio_late": listen_late / steady_late if steady_late else np.nan,
                "steady_best_views_per_post": best, "best_fit_ratio": best / steady if steady else np.nan,
            })  # fmt: skip
        if self.exp.recording.topic_measures:
            self._topic_measures(sim, add)
        products = sim.world.products
        for i, name in enumerate(products.names):
            posted = p.created_at[p.product == i]
            first_post = posted.min() if len(posted) else np.nan
            by_channel = products.sold_by_channel[i]
            add("product", name, {
                "sold": int(products.sold[i]), "sellouts": int(products.sellouts[i]),
                "restocks": int(products.restocks[i]),
                "hours_to_sellout": (products.sellout_at[i] - first_post) / 3600.0,
                **{f"sold_{c}": int(v) for c, v in zip(("following", "for_you", "sound", "other"), by_channel,
                                                       strict=True)},
                "non_follower_share": metrics.share(int(products.sold_non_follower[i]), int(products.sold[i])),
            })  # fmt: skip
        if len(products.names):
            seen = (p.product >= 0) & (p.views_in_stock >= metrics.CONVERSION_MIN_VIEWS)
            conversion = p.purchases[seen] / p.views_in_stock[seen].astype(np.float64)
            slope = metrics.linear_slope(np.log1p(p.comments[seen]), conversion)
            add("products", "all", {
                "sold": int(products.sold.sum()), "sellouts": int(products.sellouts.sum()),
                "restocks": int(products.restocks.sum()),
                "non_follower_share": metrics.share(int(products.sold_non_follower.sum()), int(products.sold.sum())),
                "conversion_comment_slope": slope, "product_posts": int(seen.sum()),
            })  # fmt: skip
        return rows

    def _topic_measures(self, sim: Simulation, add: Any) -> None:
        p = self.posts
        week, horizon = 7 * DAY, sim.exp.horizon_s
        first = (p.created_at >= 0) & (p.created_at < week)
        last = p.created_at >= horizon - week
        inspired = np.bincount(sim.inspired_topic[sim.inspired_topic >= 0], minlength=len(self.world.topics))
        for t, name in enumerate(self.world.topics):
            mine = p.topic == t
            n_first = len(np.unique(p.author[mine & first]))
            n_last = len(np.unique(p.author[mine & last]))
            add("topic", name, {
                "creators_first_week": n_first, "creators_last_week": n_last,
                "creator_growth": n_last / n_first if n_first else np.nan, "inspired": int(inspired[t]),
                "core_view_share": metrics.share(float(p.views_core[mine].sum()), float(p.views[mine].sum())),
            })  # fmt: skip

    def _focal_columns(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        primary = next((r for r in rows if r["entity"] == self.exp.focal), None)
        return {f"focal_{name}": (primary[name] if primary else None) for name, _, _, _ in FOCAL}

    def _headline(self, sim: Simulation) -> dict[str, Any]:
        p = self.posts
        views = p.views.astype(np.float64)
        n_imp = max(self.n_impressions, 1)
        had = sim.budget_by_day > 0
        watch = sim.watch_by_day[had] / 60.0
        budget = sim.budget_by_day[had] / 60.0
        exposure = np.bincount(p.author, weights=views, minlength=sim.users.n)
        posted = np.bincount(p.author, minlength=sim.users.n)
        by_channel = self.channel_counts
        breakout, n_low = metrics.breakout_rate(p.views, p.author_followers_at_post)
        return {
            "users": int(sim.users.active.sum()), "posts": len(p), "impressions": self.n_impressions,
            "mean_watch_fraction": self.sum_fraction / n_imp,
            "like_rate": p.likes.sum() / n_imp, "comment_rate": p.comments.sum() / n_imp,
            "share_rate": p.shares.sum() / n_imp, "follow_rate": p.follows.sum() / n_imp,
            "median_daily_watch_min": float(np.median(watch)) if len(watch) else np.nan,
            "mean_daily_watch_min": float(watch.mean()) if len(watch) else np.nan,
            "mean_daily_budget_min": float(budget.mean()) if len(budget) else np.nan,
            "budget_used_share": metrics.share(watch.sum(), budget.sum()),
            "following_share": (by_channel[FOLLOWING] + by_channel[RESHARE]) / n_imp,
            "pool_share": by_channel[POOL:].sum() / n_imp,
            "views_gini": metrics.gini(views), "creator_exposure_gini": metrics.gini(exposure[posted > 0]),
            "never_reshared_share": float((p.shares == 0).mean()) if len(p) else np.nan,
            "top_quarter_creator_post_share": metrics.top_share(posted[posted > 0], 0.25),
            "views_followers_slope": metrics.log_slope(p.author_followers_at_post, p.views),
            "low_follower_breakout_rate": breakout, "low_follower_posts": n_low,
        }  # fmt: skip


def _none_if_nan(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _columns(rows: list[dict[str, Any]], table: str = "focal") -> dict[str, list[Any]]:
    if not rows:
        return {name: [] for name, _, _, _ in SCHEMAS[table][3:]}
    return {k: [r[k] for r in rows] for k in rows[0]}
