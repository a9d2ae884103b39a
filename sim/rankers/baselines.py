"""Baseline rankers: random, popularity and chronological (global, not followed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.params import knob
from sim.rankers.base import OTHER, Ranker, Slate, duplicate_in_row, first_k_valid, register


@dataclass(frozen=True)
class BaselineParams:
    recent_hours: float = knob(72.0, "only posts this recent are candidates", lo=0.1, unit="h")
    oversample: int = knob(4, "candidates drawn per slot", lo=1, hi=50)


class _GlobalPool(Ranker):
    """Draw candidates from all recent posts with a weight per post."""

    Params = BaselineParams

    def weights(self, recent: np.ndarray) -> np.ndarray | None:
        return None

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        st = self.state
        assert st is not None
        posts = st.posts
        first = np.searchsorted(posts.created_at, now - self.params.recent_hours * 3600.0)
        recent = np.arange(first, len(posts))
        b, c = len(users), k * self.params.oversample
        if len(recent) == 0:
            return Slate.empty(b, k)
        w = self.weights(recent)
        if w is None:
            cand = recent[self.rng.integers(0, len(recent), (b, c))]
        else:
            cum = np.cumsum(w)
            pick = np.searchsorted(cum, self.rng.random((b, c)) * cum[-1], side="right")
            cand = recent[pick.clip(0, len(recent) - 1)]
        cand = self.order(cand)
        valid = posts.author[cand] != users[:, None]
        valid &= ~duplicate_in_row(cand)
        valid[valid] = ~st.seen.contains(np.broadcast_to(users[:, None], cand.shape)[valid], cand[valid])
        return first_k_valid(cand, np.full(cand.shape, OTHER, np.int8), valid, k)

    def order(self, cand: np.ndarray) -> np.ndarray:
        return cand


@register
class RandomRanker(_GlobalPool):
    """Uniformly random recent posts: no signal at all."""

    name = "random"


@register
class PopularityRanker(_GlobalPool):
    """Recent posts drawn in proportion to their views + 1 (rich get richer)."""

    name = "popularity"

    def weights(self, recent: np.ndarray) -> np.ndarray:
        assert self.state is not None
        return self.state.posts.views[recent].astype(np.float64) + 1.0


@register
class ChronologicalRanker(_GlobalPool):
    """Recent posts from everyone, newest first."""

    name = "chronological"

    def order(self, cand: np.ndarray) -> np.ndarray:
        return -np.sort(-cand, axis=1)
