"""The :class:`Recorder`: collects one run's records and builds its tables at the horizon.

It reads the run through the narrow :class:`~sim.recording.view.RunView`, never the engine itself;
the tables it builds conform to :data:`~sim.recording.schema.SCHEMAS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sim.analysis import metrics
from sim.model.rng import streams
from sim.rankers.base import CHANNEL_NAMES, FOLLOWING, POOL, RESHARE, Feedback, PoolDecisions
from sim.recording.measures import MeasuredRun, measure_rows
from sim.recording.schema import FOCAL, make_table, none_if_nan, rows_to_columns

if TYPE_CHECKING:
    from sim.config import Experiment
    from sim.model.world import Posts, World
    from sim.recording.view import RunView

#: Views at which a tracked post's time to reach them is recorded (``hours_to_1k`` ...).
THRESHOLDS = (1_000, 10_000, 100_000)


class Recorder:
    """Collects one run's records; :meth:`finish` turns them into Arrow tables.

    The engine reports to it as the run goes (:meth:`impressions`, :meth:`promotions`,
    :meth:`sellout`, :meth:`snapshot`, :meth:`track_post`); at the horizon :meth:`finish` builds
    ``tables``, one Arrow table per table of :data:`~sim.recording.schema.SCHEMAS` but ``summary``.

    Parameters
    ----------
    exp : Experiment
    label : str
        The ranker's label (the ``ranker`` key column).
    replicate : int
    world : World
        The run's world, as built (planted accounts' followers are read from it here).
    posts : Posts
        The run's posts, filled by the engine as the run goes.
    run_id : str
        The ``run_id`` key column.
    """

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
        """Record one review of traffic-pool promotions made at ``now`` s."""
        self._promotions.append((now, decisions))

    def sellout(self, product: int, now: float) -> None:
        """Record that ``product`` (its index) sold out at ``now`` s."""
        self.sellout_s[product] = now

    def impressions(self, feedback: Feedback, now: float) -> None:
        """Count one tick window's impressions, served from ``now`` s; keep a sample of them (every
        impression of a tracked post) for the ``impressions`` table.

        Parameters
        ----------
        feedback : Feedback
            The window's impressions, arrays of shape ``(n_impressions,)``.
        now : float
            Start of the tick window, s.
        """
        self.n_impressions += len(feedback.post)
        self.sum_fraction += float(feedback.watch_fraction.sum(dtype=np.float64))
        np.add.at(self.channel_counts, feedback.channel.astype(np.int64) & 255, 1)
        is_tracked = self._count_tracked(feedback, now)
        keep = is_tracked | (self.rng.random(len(feedback.post)) < self.sample_rate)
        if keep.any():
            self._impressions.append({
                "time_s": np.full(int(keep.sum()), now), "user_id": feedback.user[keep],
                "post_id": feedback.post[keep], "channel": feedback.channel[keep],
                "position": feedback.position[keep], "watch_fraction": feedback.watch_fraction[keep],
                "liked": feedback.liked[keep], "commented": feedback.commented[keep],
                "shared": feedback.shared[keep], "followed": feedback.followed[keep],
                "purchased": feedback.purchased[keep], "tracked": is_tracked[keep],
            })  # fmt: skip

    def _count_tracked(self, feedback: Feedback, now: float) -> np.ndarray:
        """Count the tracked posts' views by non-followers and the times they reach
        :data:`THRESHOLDS`; returns which impressions are of a tracked post, shape ``(n_impressions,)``."""
        is_tracked = np.zeros(len(feedback.post), dtype=bool)
        for i, pid in enumerate(self.tracked_ids):
            mine = feedback.post == pid
            if not mine.any():
                continue
            is_tracked |= mine
            followers = self.tracked_followers[i]
            self.tracked_nonfollower[i] += int((~np.isin(feedback.user[mine], followers)).sum())
            views = int(self.posts.views[pid])
            for j, threshold in enumerate(THRESHOLDS):
                if np.isnan(self.tracked_hours_to[i][j]) and views >= threshold:
                    self.tracked_hours_to[i][j] = (now - float(self.posts.created_at[pid])) / 3600.0
        return is_tracked

    def snapshot(self, run: RunView, now: float) -> None:
        """Append the tracked posts', planted accounts' and products' counters at ``now`` s to the
        ``timeseries`` table; the first snapshot at t >= 0 also keeps the planted accounts'
        followers at the start of the scenario."""
        hours = now / 3600.0
        posts = self.posts
        if self.followers_t0 is None and now >= 0:
            self.followers_t0 = {name: int(run.state.follower_counts[uid]) for name, uid in run.world.accounts.items()}
        for name, pid in zip(self.tracked_names, self.tracked_ids, strict=True):
            for metric in ("views", "views_pool", "views_following", "views_reshare", "likes", "shares",
                           "purchases"):
                self._series.append((hours, name, "post", metric, float(posts.cols[metric][pid])))
        for name, uid in run.world.accounts.items():
            self._series.append((hours, name, "account", "followers", float(run.state.follower_counts[uid])))
        products = run.world.products
        for i, name in enumerate(products.names):
            self._series.append((hours, name, "product", "inventory", float(products.inventory[i])))
            self._series.append((hours, name, "product", "sold", float(products.sold[i])))
            self._series.append((hours, name, "product", "sellouts", float(products.sellouts[i])))
            self._series.append((hours, name, "product", "restocks", float(products.restocks[i])))

    # ---------------------------------------------------------------- at the end

    def finish(self, run: RunView) -> None:
        """Build every table of the run into ``tables``, from ``run`` at its horizon."""
        self.snapshot(run, run.env.now)
        self.tables["posts"] = self._posts_table()
        self.tables["promotions"] = self._promotions_table()
        self.tables["timeseries"] = self._timeseries_table()
        self.tables["impressions"] = self._impressions_table()
        focal = self._focal_rows(run)
        self.tables["focal"] = make_table("focal", {**self.keys, **rows_to_columns(focal, "focal")})
        self.tables["runs"] = make_table("runs", {**self.keys, **self._headline(run), **self._focal_columns(focal)})
        measured = MeasuredRun(run, self.posts, self.followers_built, self.followers_t0)
        self.tables["measures"] = make_table("measures", {**self.keys, **rows_to_columns(measure_rows(measured),
                                                                                          "measures")})

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
        for name in ("views", "views_first_day", "likes", "comments", "shares", "follows", "purchases",
                     "views_in_stock", "completions", "watch_s", "views_following", "views_reshare", "views_pool",
                     "views_explore", "views_other", "depth", "derivatives", "bought_likes"):
            cols[name] = getattr(p, name)
        cols["sound"] = pa.array(p.sound, mask=p.sound < 0)
        cols["parent"] = pa.array(p.parent, mask=p.parent < 0)
        return make_table("posts", {**self.keys, **cols})

    def _promotions_table(self) -> pa.Table:
        parts = self._promotions
        if not parts:
            return make_table("promotions", {**self.keys, **{k: np.zeros(0) for k in (
                "post_id", "time_s", "stage", "impressions", "score", "threshold", "promoted", "early_stop")}})
        cat = {name: np.concatenate([getattr(d, name) for _, d in parts])
               for name in ("post", "stage", "impressions", "score", "threshold", "promoted")}
        cat["early_stop"] = np.concatenate([d.early if d.early is not None else np.zeros(len(d.post), bool)
                                            for _, d in parts])
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

    def _focal_rows(self, run: RunView) -> list[dict[str, Any]]:
        """Rows of the ``focal`` table: one per tracked post, in the order they were tracked."""
        posts = self.posts
        users = int(run.users.active.sum())
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
                "followers_final": int(run.state.follower_counts[author]),
                "sellout_hours": (sold_at - float(posts.created_at[pid])) / 3600.0 if np.isfinite(sold_at) else None,
                "purchases": int(posts.purchases[pid]), "max_stage": stage_reached.get(pid, -1),
                "hours_to_1k": none_if_nan(hours_to[0]), "hours_to_10k": none_if_nan(hours_to[1]),
                "hours_to_100k": none_if_nan(hours_to[2]),
            })  # fmt: skip
        return rows

    def _focal_columns(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``runs`` table's ``focal_*`` columns: the experiment's primary focal post (nulls
        where it has none)."""
        primary = next((r for r in rows if r["entity"] == self.exp.focal), None)
        return {f"focal_{name}": (primary[name] if primary else None) for name, _, _, _ in FOCAL}

    def _headline(self, run: RunView) -> dict[str, Any]:
        """The ``runs`` table's headline columns (``HEADLINE`` in the schema)."""
        p = self.posts
        views = p.views.astype(np.float64)
        n_imp = max(self.n_impressions, 1)
        had = run.budget_by_day > 0
        watch = run.watch_by_day[had] / 60.0
        budget = run.budget_by_day[had] / 60.0
        exposure = np.bincount(p.author, weights=views, minlength=run.users.n)
        posted = np.bincount(p.author, minlength=run.users.n)
        by_channel = self.channel_counts
        breakout, n_low = metrics.breakout_rate(p.views, p.author_followers_at_post)
        return {
            "users": int(run.users.active.sum()), "posts": len(p), "impressions": self.n_impressions,
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
            **metrics.view_shape(p.created_at, p.views, p.views_first_day, self.exp.horizon_s),
            "top_quarter_creator_post_share": metrics.top_share(posted[posted > 0], 0.25),
            "views_followers_slope": metrics.log_slope(p.author_followers_at_post, p.views),
            "low_follower_breakout_rate": breakout, "low_follower_posts": n_low,
        }  # fmt: skip
