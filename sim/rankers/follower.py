"""The follower-graph ranker: posts from accounts you follow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import knob
from sim.rankers.base import FOLLOWING, RESHARE, Ranker, Slate, followee_edges, register


@dataclass(frozen=True)
class FollowerParams:
    order: str = knob("chronological", "slate order: newest first, or most visible engagement first",
                      choices=("chronological", "engagement"))
    lookback_hours: float = knob(72.0, "only posts (and reshares of posts) this recent are candidates",
                                 lo=0.1, unit="h")
    reshares: bool = knob(True, "include posts that followed accounts reshared")


@register
class FollowerRanker(Ranker):
    """Recent posts of followed accounts plus what they reshared.

    Candidates are the latest posts of each followed account and the latest
    posts each reshared, not yet seen and not older than ``lookback_hours``;
    a post both posted and reshared appears once, as ``following``.  When the
    candidates run out the slate is padded with -1 and the session ends.
    """

    name = "follower"
    Params = FollowerParams

    def candidates(self, users: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (row, post, channel) arrays of unseen candidates for ``users``."""
        st = self.state
        assert st is not None
        rows, followee = followee_edges(st, users)
        rings = [(st.author_posts.items[followee], FOLLOWING)]
        if self.params.reshares:
            rings.append((st.reshares.items[followee], RESHARE))
        width = st.author_posts.items.shape[1]
        row = np.concatenate([np.repeat(rows, width) for _ in rings])
        post = np.concatenate([r.ravel() for r, _ in rings])
        channel = np.concatenate([np.full(len(rows) * width, c, np.int8) for _, c in rings])
        keep = post >= 0
        row, post, channel = row[keep], post[keep], channel[keep]
        posts = st.posts
        fresh = now - posts.created_at[post] <= self.params.lookback_hours * 3600.0
        keep = fresh & (posts.author[post] != users[row])
        row, post, channel = row[keep], post[keep], channel[keep]
        keep = ~st.seen.contains(users[row], post)
        row, post, channel = row[keep], post[keep], channel[keep]
        # One entry per (row, post); the own-post channel wins over a reshare.
        order = np.lexsort((channel, post, row))
        row, post, channel = row[order], post[order], channel[order]
        first = np.ones(len(row), dtype=bool)
        first[1:] = (row[1:] != row[:-1]) | (post[1:] != post[:-1])
        return row[first], post[first], channel[first]

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        slate = Slate.empty(len(users), k)
        row, post, channel = self.candidates(users, now)
        if len(row) == 0:
            return slate
        posts = self.state.posts  # type: ignore[union-attr]
        if self.params.order == "engagement":
            visible = posts.likes[post] + posts.bought_likes[post] + posts.comments[post] + posts.shares[post]
            score = visible.astype(np.float64) + posts.created_at[post] * 1e-12
        else:
            score = posts.created_at[post]
        order = np.lexsort((post, -score, row))
        row, post, channel = row[order], post[order], channel[order]
        starts = np.searchsorted(row, row, side="left")
        position = np.arange(len(row)) - starts
        take = position < k
        slate.post_ids[row[take], position[take]] = post[take]
        slate.channel[row[take], position[take]] = channel[take]
        return slate
