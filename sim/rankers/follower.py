"""The follower-graph ranker: posts from accounts you follow."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.config import knob
from sim.rankers.base import FOLLOWING, RESHARE, Ranker, Slate, register
from sim.state import bloom_probe


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
        follows, posts, seen = st.follows, st.posts, st.seen
        row, post, channel = _gather(
            np.ascontiguousarray(users, dtype=np.int64), follows.indptr, follows.indices,
            st.author_posts.items, st.reshares.items, self.params.reshares, posts.cols["created_at"],
            posts.cols["author"], now, self.params.lookback_hours * 3600.0, seen.bits, seen.offset,
            seen.words_per_user)  # fmt: skip
        # One entry per (row, post); the own-post channel wins over a reshare.
        order = np.lexsort((channel, post, row))
        row, post, channel = row[order], post[order], channel[order]
        first = np.ones(len(row), dtype=bool)
        first[1:] = (row[1:] != row[:-1]) | (post[1:] != post[:-1])
        return row[first], post[first], channel[first]

    def start(self, state) -> None:  # type: ignore[no-untyped-def]
        super().start(state)
        self._now: float | None = None
        self._users = np.zeros(0, np.int64)

    def _feeds(self, users: np.ndarray, now: float) -> None:
        """Every user's ordered feed for this tick: (row, post, channel) sorted by row, then rank.

        Sessions of one tick are served in rounds; the feed is built once, at the tick's first
        round (which holds every user of the tick), and later rounds continue down it.
        """
        order_users = np.argsort(users, kind="stable")
        self._users = users[order_users]
        row, post, channel = self.candidates(self._users, now)
        posts = self.state.posts  # type: ignore[union-attr]
        if self.params.order == "engagement":
            visible = posts.likes[post] + posts.bought_likes[post] + posts.comments[post] + posts.shares[post]
            score = visible.astype(np.float64) + posts.created_at[post] * 1e-12
        else:
            score = posts.created_at[post]
        order = np.lexsort((post, -score, row))
        self._post, self._channel = post[order], channel[order]
        bounds = np.searchsorted(row[order], np.arange(len(users) + 1))
        self._start, self._end = bounds[:-1], bounds[1:]
        self._next = self._start.copy()
        self._now = now

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        pos = np.searchsorted(self._users, users).clip(0, max(len(self._users) - 1, 0))
        if now != self._now or len(self._users) == 0 or (self._users[pos] != users).any():
            self._feeds(users, now)
            pos = np.searchsorted(self._users, users)
        slate = Slate.empty(len(users), k)
        first, end = self._next[pos], self._end[pos]
        idx = first[:, None] + np.arange(k)[None, :]
        ok = idx < end[:, None]
        rows, cols = np.nonzero(ok)
        slate.post_ids[rows, cols] = self._post[idx[rows, cols]]
        slate.channel[rows, cols] = self._channel[idx[rows, cols]]
        self._next[pos] = np.minimum(first + k, end)
        return slate


@numba.njit(cache=True)
def _gather(users, indptr, indices, author_items, reshare_items, reshares, created_at, author, now,  # type: ignore[no-untyped-def]
            lookback_s, seen_bits, seen_offset, seen_words):
    """Candidates of ``users`` (shape ``(n,)``): the latest posts of every followed account (and,
    with ``reshares``, the posts it reshared) at most ``lookback_s`` old at ``now``, not the
    user's own and not seen.  Returns flat (row, post, channel) arrays, one entry per ring slot
    that passed (a post may appear more than once)."""
    width = author_items.shape[1]
    n_rings = 2 if reshares else 1
    total = 0
    for r in range(len(users)):
        total += indptr[users[r] + 1] - indptr[users[r]]
    row = np.empty(total * width * n_rings, np.int64)
    post = np.empty(total * width * n_rings, np.int64)
    channel = np.empty(total * width * n_rings, np.int8)
    m = 0
    for ring in range(n_rings):
        items = author_items if ring == 0 else reshare_items
        code = FOLLOWING if ring == 0 else RESHARE
        for r in range(len(users)):
            user = users[r]
            for e in range(indptr[user], indptr[user + 1]):
                followee = indices[e]
                for slot in range(width):
                    p = items[followee, slot]
                    if p < 0 or now - created_at[p] > lookback_s or author[p] == user:
                        continue
                    word, mask = bloom_probe(user, p, seen_offset, seen_words)
                    if (seen_bits[word] & mask) == mask:
                        continue
                    row[m], post[m], channel[m] = r, p, code
                    m += 1
    return row[:m], post[:m], channel[:m]
