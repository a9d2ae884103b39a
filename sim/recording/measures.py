"""The per-run ``measures`` table: one reporter per kind of scenario entity.

In the way Mesa's ``DataCollector`` declares model reporters, :data:`REPORTERS` names, for each
kind of :data:`~sim.recording.schema.MEASURES`, the small function that measures one entity of that
kind from the finished run; adding a measure is adding one reporter (and its metrics to
``MEASURES``).  Each reporter returns its kind's metrics (metric -> value), or ``None`` where the
kind is not measured in this run (no planted account, fewer than two scenario sounds, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.analysis import metrics
from sim.config import DAY
from sim.model.world import NO_ID, SALES_CHANNELS
from sim.recording.schema import MEASURES, none_if_nan

if TYPE_CHECKING:
    from sim.config import PlantedAccount
    from sim.model.world import Posts
    from sim.recording.view import RunView

LATE_WINDOW_DAYS = 7.0  # "late" listening measures: posts made in the last week, at least a day old
TOPIC_WINDOW_DAYS = 7.0  # a topic's creators are counted in the first and the last week of the run

#: A kind's metrics for one entity: metric -> value (None or nan: undefined).
Values = dict[str, float | None]


@dataclass(frozen=True)
class MeasuredRun:
    """What the reporters read: the finished run, its posts and its planted accounts' followers.

    Parameters
    ----------
    view : RunView
        The run at its horizon.
    posts : Posts
        Every post of the run (warm-up included).
    followers_built : dict[str, int]
        Planted account name -> its followers as the world was built (planted plus bought).
    followers_t0 : dict[str, int] or None
        Planted account name -> its followers at t = 0, after the warm-up (None: no snapshot at
        t >= 0 was taken).
    """

    view: RunView
    posts: Posts
    followers_built: dict[str, int]
    followers_t0: dict[str, int] | None

    @cached_property
    def followers_start(self) -> dict[str, int]:
        """Planted account name -> followers at t = 0 (as built where no snapshot was taken)."""
        return self.followers_t0 or self.followers_built

    @cached_property
    def bought_followers(self) -> dict[str, int]:
        """Planted account name -> the followers bought for it (inactive users)."""
        return {spec.name: spec.bought_followers for spec in self.view.exp.world.accounts}

    @cached_property
    def inspired_by_topic(self) -> np.ndarray:
        """Users inspired to post in each topic, shape ``(n_topics,)``."""
        inspired = self.view.inspired_topic
        return np.bincount(inspired[inspired >= 0], minlength=len(self.view.world.topics))

    @cached_property
    def first_week(self) -> np.ndarray:
        """Posts made in the first week after t = 0, shape ``(n_posts,)`` bool."""
        created = self.posts.created_at
        return (created >= 0) & (created < TOPIC_WINDOW_DAYS * DAY)

    @cached_property
    def last_week(self) -> np.ndarray:
        """Posts made in the last week before the horizon, shape ``(n_posts,)`` bool."""
        return self.posts.created_at >= self.view.exp.horizon_s - TOPIC_WINDOW_DAYS * DAY

    def posted_after_t0(self, uid: int) -> np.ndarray:
        """Posts by ``uid`` made at t >= 0, shape ``(n_posts,)`` bool."""
        return (self.posts.author == uid) & (self.posts.created_at >= 0)


#: Measures one entity (name, and its id or index; NO_ID for the whole run) of a run.
Reporter = Callable[[MeasuredRun, str, int], "Values | None"]
#: The entities a group of kinds is measured over: (name, id or index), in table order.
Entities = Callable[[MeasuredRun], Iterable[tuple[str, int]]]


# ---------------------------------------------------------------- planted accounts


def account(run: MeasuredRun, name: str, uid: int) -> Values:
    """A planted account's followers and the reach of its posts after t = 0."""
    p = run.posts
    mine = run.posted_after_t0(uid)
    views = float(p.views[mine].sum())
    followers = run.followers_start[name]
    bought = run.bought_followers[name]
    end = int(run.view.state.follower_counts[uid])
    topics = np.bincount(p.topic[mine], minlength=len(run.view.world.topics))
    return {
        "followers_built": run.followers_built[name], "followers_start": followers, "followers_end": end,
        "follower_growth": end / followers if followers else np.nan,
        "posts": int(mine.sum()), "views": views,
        "views_per_post": views / mine.sum() if mine.any() else np.nan,
        "views_per_follower": views / (followers - bought) if followers > bought else np.nan,
        "core_view_share": metrics.share(float(p.views_core[mine].sum()), views),
        "main_topic_share": metrics.share(int(topics.max()), int(mine.sum())),
    }  # fmt: skip


def account_formats(run: MeasuredRun, name: str, uid: int) -> Values | None:
    """How concentrated a multi-format planted account's posts are on one format."""
    if uid not in run.view.format_mix:
        return None
    p = run.posts
    mine = run.posted_after_t0(uid)
    formats = np.bincount(p.format[mine & (p.format >= 0)], minlength=len(run.view.exp.world.formats))
    return {"main_format_share": metrics.share(int(formats.max()), int(formats.sum()))}


def planted_accounts(run: MeasuredRun, name: str, _: int) -> Values | None:
    """Every planted account together."""
    world = run.view.world
    if not world.accounts:
        return None
    p = run.posts
    mine = run.view.planted[p.author] & (p.created_at >= 0)
    return {
        "planted": len(world.accounts), "views": float(p.views[mine].sum()),
        "followers_end": int(run.view.state.follower_counts[run.view.planted].sum()),
    }  # fmt: skip


# ---------------------------------------------------------------- scenario sounds


def sound(run: MeasuredRun, name: str, sid: int) -> Values:
    """A scenario sound's posts, derivatives and listeners."""
    p, sounds = run.posts, run.view.sounds
    uses = p.sound == sid
    derived = uses & (p.parent >= 0)
    by_others = derived & (p.author != int(sounds.artist[sid]))
    views = float(p.views[uses].sum())
    row = sorted(sounds.names.values()).index(sid)  # listened's rows are in increasing sound id
    listeners = int(run.view.listened[row].sum())
    via_artist = int(run.view.listeners_via_artist[row])
    first = (p.created_at[by_others].min() - sounds.created_at[sid]) / 3600.0 if by_others.any() else np.nan
    return {
        "posts": int(uses.sum()), "derivative_posts": int(derived.sum()), "views": views,
        "derivative_view_share": metrics.share(float(p.views[derived].sum()), views),
        "derivatives_by_others": int(by_others.sum()), "tree_depth": int(p.depth[uses].max()),
        "hours_to_first_duet": first, "unique_listeners": listeners,
        "listeners_via_others_share": metrics.share(listeners - via_artist, listeners),
    }  # fmt: skip


def scenario_sounds(run: MeasuredRun, name: str, _: int) -> Values | None:
    """How listeners spread over the scenario sounds (two or more of them)."""
    if len(run.view.sounds.names) < 2:
        return None
    listeners = run.view.listened.sum(axis=1).astype(np.float64)
    via_others = (listeners - run.view.listeners_via_artist) / np.maximum(listeners, 1)
    top = np.argsort(-listeners, kind="stable")[: max(1, int(round(0.1 * len(listeners))))]
    return {"named": len(listeners), "median_listeners": float(np.median(listeners)),
            "top_decile_via_others": float((via_others[top] > 0.5).mean())}


# ---------------------------------------------------------------- creators who listen


def listening(run: MeasuredRun, name: str, _: int) -> Values | None:
    """Listening planted creators' views per post against steady ones' (both kinds needed)."""
    mixed = [a for a in run.view.exp.world.accounts if a.topics]
    if not (any(a.listen_rate > 0 for a in mixed) and any(a.listen_rate == 0 for a in mixed)):
        return None
    horizon = run.view.exp.horizon_s
    late_from = max(0.0, horizon - LATE_WINDOW_DAYS * DAY)
    listen = _median_views_per_post(run, mixed, True, 0.0, np.inf)
    steady = _median_views_per_post(run, mixed, False, 0.0, np.inf)
    listen_late = _median_views_per_post(run, mixed, True, late_from, horizon - DAY)
    steady_late = _median_views_per_post(run, mixed, False, late_from, horizon - DAY)
    best = metrics.median_or_nan([_best_fit_views_per_post(run, a) for a in mixed if a.listen_rate == 0])
    return {
        "listener_views_per_post": listen, "steady_views_per_post": steady,
        "ratio": listen / steady if steady else np.nan,
        "listener_views_per_post_late": listen_late, "steady_views_per_post_late": steady_late,
        "ratio_late": listen_late / steady_late if steady_late else np.nan,
        "steady_best_views_per_post": best, "best_fit_ratio": best / steady if steady else np.nan,
    }  # fmt: skip


def _median_views_per_post(run: MeasuredRun, mixed: list[PlantedAccount], listening: bool, start: float,
                           end: float) -> float:
    """Median over the listening (or steady) accounts of ``mixed`` of their views per post among
    their posts made in ``[start, end)`` s; nan where none of them made such a post."""
    p, accounts = run.posts, run.view.world.accounts
    values = [metrics.share(float(p.views[mine].sum()), int(mine.sum()))
              for a in mixed if (a.listen_rate > 0) == listening
              for mine in ((p.author == accounts[a.name]) & (p.created_at >= start) & (p.created_at < end),)]
    return metrics.median_or_nan(values)


def _best_fit_views_per_post(run: MeasuredRun, a: PlantedAccount) -> float:
    """Its views per post had each post it drew from its mixes (not its derivatives or scenario
    posts) earned what its posts on its best-fitting topic of its own, in its best format, earned
    on average; nan where it made none of those."""
    p, world = run.posts, run.view.world
    uid = world.accounts[a.name]
    own = p.author == uid
    drawn = own & (p.event == NO_ID) & (p.parent == NO_ID)
    fit = np.where(np.isin(world.topics, a.topics), world.topic_fit[uid], -np.inf)
    best = drawn & (p.topic == np.argmax(fit))
    if uid in world.format_fit:
        best &= p.format == np.argmax(world.format_fit[uid])
    if not best.any():
        return np.nan
    views = p.views[own].sum() - p.views[drawn].sum() + drawn.sum() * p.views[best].mean()
    return float(views / own.sum())


# ---------------------------------------------------------------- topics and products


def topic(run: MeasuredRun, name: str, t: int) -> Values:
    """A topic's creators in the first and last week, and who watches it."""
    p = run.posts
    mine = p.topic == t
    n_first = len(np.unique(p.author[mine & run.first_week]))
    n_last = len(np.unique(p.author[mine & run.last_week]))
    return {
        "creators_first_week": n_first, "creators_last_week": n_last,
        "creator_growth": n_last / n_first if n_first else np.nan, "inspired": int(run.inspired_by_topic[t]),
        "core_view_share": metrics.share(float(p.views_core[mine].sum()), float(p.views[mine].sum())),
    }  # fmt: skip


def product(run: MeasuredRun, name: str, i: int) -> Values:
    """A product's sales, sell-outs and the channels that sold it."""
    p, products = run.posts, run.view.world.products
    posted = p.created_at[p.product == i]
    first_post = posted.min() if len(posted) else np.nan
    return {
        "sold": int(products.sold[i]), "sellouts": int(products.sellouts[i]),
        "restocks": int(products.restocks[i]),
        "hours_to_sellout": (products.sellout_at[i] - first_post) / 3600.0,
        **{f"sold_{c}": int(v) for c, v in zip(SALES_CHANNELS, products.sold_by_channel[i], strict=True)},
        "non_follower_share": metrics.share(int(products.sold_non_follower[i]), int(products.sold[i])),
    }  # fmt: skip


def all_products(run: MeasuredRun, name: str, _: int) -> Values | None:
    """Every product together, and how comments go with conversion."""
    p, products = run.posts, run.view.world.products
    if not len(products.names):
        return None
    seen = (p.product >= 0) & (p.views_in_stock >= metrics.CONVERSION_MIN_VIEWS)
    conversion = p.purchases[seen] / p.views_in_stock[seen].astype(np.float64)
    slope = metrics.linear_slope(np.log1p(p.comments[seen]), conversion)
    return {
        "sold": int(products.sold.sum()), "sellouts": int(products.sellouts.sum()),
        "restocks": int(products.restocks.sum()),
        "non_follower_share": metrics.share(int(products.sold_non_follower.sum()), int(products.sold.sum())),
        "conversion_comment_slope": slope, "product_posts": int(seen.sum()),
    }  # fmt: skip


# ---------------------------------------------------------------- the table


def whole_run(entity: str) -> Entities:
    """One entity, ``entity``, standing for the whole run."""
    return lambda run: [(entity, NO_ID)]


def _planted(run: MeasuredRun) -> Iterable[tuple[str, int]]:
    return run.view.world.accounts.items()


def _sounds(run: MeasuredRun) -> Iterable[tuple[str, int]]:
    return run.view.sounds.names.items()


def _topics(run: MeasuredRun) -> Iterable[tuple[str, int]]:
    if not run.view.exp.recording.topic_measures:
        return []
    return [(name, t) for t, name in enumerate(run.view.world.topics)]


def _products(run: MeasuredRun) -> Iterable[tuple[str, int]]:
    return [(name, i) for i, name in enumerate(run.view.world.products.names)]


#: The reporters, grouped by the entities they measure, in table order: for each group, for each
#: entity, the rows of each kind in turn (so a planted account's ``account_formats`` row follows
#: its ``account`` row).
REPORTERS: tuple[tuple[Entities, dict[str, Reporter]], ...] = (
    (_planted, {"account": account, "account_formats": account_formats}),
    (whole_run("planted"), {"accounts": planted_accounts}),
    (_sounds, {"sound": sound}),
    (whole_run("named"), {"sounds": scenario_sounds}),
    (whole_run("creators"), {"listening": listening}),
    (_topics, {"topic": topic}),
    (_products, {"product": product}),
    (whole_run("all"), {"products": all_products}),
)


def measure_rows(run: MeasuredRun) -> list[dict[str, Any]]:
    """Rows of the ``measures`` table (kind, entity, metric, value), in :data:`REPORTERS` order."""
    rows: list[dict[str, Any]] = []
    for entities, reporters in REPORTERS:
        for entity, index in entities(run):
            for kind, reporter in reporters.items():
                values = reporter(run, entity, index)
                if values is None:
                    continue
                assert values.keys() == MEASURES[kind].keys(), kind
                rows.extend({"kind": kind, "entity": entity, "metric": k, "value": none_if_nan(v)}
                            for k, v in values.items())
    return rows
