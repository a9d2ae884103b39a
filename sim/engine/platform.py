"""What every mechanism reads: the experiment, the world, the posts and the platform state.

:class:`Platform` is built once per run and shared; the mechanisms' own state lives in their
modules (:mod:`~sim.engine.posting`, :mod:`~sim.engine.serving`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import DAY, Experiment
from sim.model.state import PlatformState, SeenFilter
from sim.model.world import Posts, Users, World

#: Share of a post's mean length watched by an average view, when sizing the seen filter.
EXPECTED_WATCH_SHARE = 0.4
#: Headroom over the expected views of a user when sizing the seen filter (x).
SEEN_HEADROOM = 2.0
#: Views every user's seen filter has room for, however little they watch.
SEEN_MIN_VIEWS = 50


@dataclass
class Platform:
    """The shared part of one run.

    Attributes
    ----------
    exp : Experiment
    world : World
    posts : Posts
        Every post made so far, one row per post.
    state : PlatformState
        Follows, rings, seen filter and the clock as rankers see them.
    planted : np.ndarray
        Shape ``(n_users,)`` bool: the scenario's planted accounts.
    diurnal : np.ndarray
        Shape ``(24,)``: activity multiplier per hour of the day, mean 1.
    tick_s : float
        Length of one tick window (s).
    """

    exp: Experiment
    world: World
    posts: Posts
    state: PlatformState
    planted: np.ndarray
    diurnal: np.ndarray
    tick_s: float

    @property
    def users(self) -> Users:
        return self.world.users


def build_platform(exp: Experiment, world: World) -> Platform:
    """The platform of a run on ``world``, before anything is posted."""
    posts = Posts()
    days = (exp.warmup_s + exp.horizon_s) / DAY
    state = PlatformState(world, posts, SeenFilter(expected_views(exp, world.users, days)))
    planted = np.zeros(world.users.n, dtype=bool)
    planted[list(world.accounts.values())] = True
    diurnal = np.asarray(exp.world.diurnal, dtype=np.float64)
    return Platform(exp, world, posts, state, planted, diurnal / diurnal.mean(), exp.tick_seconds)


def expected_views(exp: Experiment, users: Users, days: float) -> np.ndarray:
    """Views each user has room for in the seen filter over ``days``, shape ``(n_users,)``: their
    attention on active days divided by the seconds an average view takes, with headroom."""
    w = exp.world
    mean_length = w.post_length_median_s * np.exp(w.post_length_sigma**2 / 2)
    per_view = EXPECTED_WATCH_SHARE * mean_length + exp.behavior.swipe_seconds
    return SEEN_HEADROOM * users.active_share * users.attention_s * days / per_view + SEEN_MIN_VIEWS


def hour_factor(platform: Platform, now: float) -> float:
    """The diurnal multiplier of the hour ``now`` (s) falls in."""
    return float(platform.diurnal[int((now % DAY) // 3600)])


def day_index(platform: Platform, now: float) -> int:
    """Days since the start of the warm-up at ``now`` (s): the row of the per-day arrays."""
    return int((now + platform.exp.warmup_s) // DAY)
