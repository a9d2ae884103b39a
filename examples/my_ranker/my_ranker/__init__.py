"""An example ranker outside ``sim/``: recent posts of the viewer's topics, best like rate first.

Found by feedsim as ``my_ranker:LikedInTopic`` (with ``examples/my_ranker`` on ``PYTHONPATH`` or
installed), or as ``liked`` once installed (the ``feedsim.rankers`` entry point in its pyproject).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import knob
from sim.rankers.base import EXPLORE, Ranker, Slate, duplicate_in_row, first_k_valid


@dataclass(frozen=True)
class LikedParams:
    """Validated from the ``params`` table of the ranker's ``[[rankers]]`` entry."""

    recent_hours: float = knob(24.0, "only posts this recent are candidates", lo=0.1, unit="h")
    oversample: int = knob(12, "candidates drawn per slot", lo=1, hi=50)
    prior_views: float = knob(20.0, "views of prior (at the platform's mean like rate) smoothing a post's "
                              "like rate", lo=0)


class LikedInTopic(Ranker):
    """Candidates drawn from recent posts in proportion to the viewer's interest in their topic,
    then ordered by smoothed like rate (likes + prior) / (views + prior views)."""

    Params = LikedParams
    name = "liked"

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        """Slates ``(len(users), k)``; a post the user has seen, or wrote, is never offered."""
        state = self.state
        assert state is not None, "start() was not called"
        posts = state.posts
        first = int(np.searchsorted(posts.created_at, now - self.params.recent_hours * 3600.0))
        n_recent = len(posts) - first
        b, c = len(users), k * self.params.oversample
        if n_recent <= 0 or b == 0:
            return Slate.empty(b, k)
        # Uniform draws, kept with probability = the viewer's relative interest in the post's topic.
        cand = first + self.rng.integers(0, n_recent, (b, c))
        interest = state.affinity[users[:, None], posts.topic[cand]]
        keep = self.rng.random((b, c)) < interest
        views = posts.views[first:].astype(np.float64)
        likes = posts.likes[first:].astype(np.float64)
        mean_rate = likes.sum() / max(views.sum(), 1.0)
        prior = self.params.prior_views
        rate = (likes + prior * mean_rate) / (views + prior + 1e-9)
        order = np.argsort(-np.where(keep, rate[cand - first], -1.0), axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        keep = np.take_along_axis(keep, order, axis=1)
        valid = keep & (posts.author[cand] != users[:, None]) & ~duplicate_in_row(cand)
        valid[valid] = ~state.seen.contains(np.broadcast_to(users[:, None], cand.shape)[valid], cand[valid])
        return first_k_valid(cand, np.full(cand.shape, EXPLORE, np.int8), valid, k)
