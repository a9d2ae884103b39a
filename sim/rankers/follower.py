"""The follower-graph ranker: posts from accounts you follow."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.model.state import PlatformState, bloom_probe
from sim.params import knob
from sim.rankers.base import FOLLOWING, OTHER, RESHARE, Ranker, Slate, duplicate_in_row, register

SUGGESTION_POOL = 32  # most popular recent posts per topic that suggestions are taken from


@dataclass(frozen=True)
class FollowerParams:
    order: str = knob("chronological", "slate order: newest first, or most visible engagement first",
                      choices=("chronological", "engagement"))
    lookback_hours: float = knob(72.0, "only posts (and reshares of posts) this recent are candidates",
                                 lo=0.1, unit="h")
    reshares: bool = knob(True, "include posts that followed accounts reshared")
    suggested_posts: int = knob(0, "suggested posts after the followed ones ('you're all caught up'), per "
                                "user and tick: the most visibly popular recent posts (likes and author "
                                "followers, bought ones included) of the user's two main topics, by "
                                "accounts they do not follow", lo=0, hi=64)


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

    def suggestions(self, users: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (row, post, popularity) of up to ``suggested_posts`` unseen posts per user from
        accounts they do not follow: the most visibly popular recent posts of the user's two main
        topics, most popular first."""
        st = self.state
        assert st is not None
        n_sug, width = self.params.suggested_posts, SUGGESTION_POOL
        posts = st.posts
        items = st.topic_posts.items  # (T, ring) recent post ids per topic, -1 unused
        if len(posts) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        safe = items.clip(0)
        fresh = (items >= 0) & (now - posts.created_at[safe] <= self.params.lookback_hours * 3600.0)
        popularity = np.where(fresh, self._popularity(safe), -np.inf)
        width = min(width, items.shape[1])
        top = np.argpartition(-popularity, width - 1, axis=1)[:, :width]
        top_post = np.take_along_axis(items, top, axis=1)
        top_pop = np.take_along_axis(popularity, top, axis=1)
        topics = self._main_topics[users]  # (U, 2)
        cand = top_post[topics].reshape(len(users), -1)
        pop = top_pop[topics].reshape(len(users), -1)
        safe = cand.clip(0)
        author = posts.author[safe].astype(np.int64)
        ok = np.isfinite(pop) & (author != users[:, None]) & ~st.seen.contains(users[:, None], safe)
        ok &= ~duplicate_in_row(np.where(ok, cand, -1))
        row, col = np.nonzero(ok)
        followed = st.is_following(users[row], author[row, col])
        ok[row[followed], col[followed]] = False
        pop = np.where(ok, pop, -np.inf)
        best = np.argsort(-pop, axis=1, kind="stable")[:, :n_sug]
        pop = np.take_along_axis(pop, best, axis=1)
        chosen = np.take_along_axis(cand, best, axis=1)
        row, col = np.nonzero(np.isfinite(pop))
        return row, chosen[row, col], pop[row, col]

    def _popularity(self, post: np.ndarray) -> np.ndarray:
        """What users see of a post's success: log1p(likes, bought ones included, + comments +
        shares) + log1p(the author's followers, bought ones included)."""
        st = self.state
        assert st is not None
        posts = st.posts
        visible = posts.likes[post] + posts.bought_likes[post] + posts.comments[post] + posts.shares[post]
        return np.log1p(visible) + np.log1p(st.follower_counts[posts.author[post]])

    def start(self, state: PlatformState) -> None:
        super().start(state)
        self._main_topics = np.argsort(-state.affinity, axis=1)[:, :2]  # each user's two main topics
        self._now: float | None = None
        self._users = np.zeros(0, np.int64)

    def _feeds(self, users: np.ndarray, now: float) -> None:
        """Every user's ordered feed for this tick: (row, post, channel) sorted by row, then rank.

        Sessions of one tick are served in rounds; the feed is built once, at the tick's first
        round (which holds every user of the tick), and later rounds continue down it.
        """
        order_users = np.argsort(users, kind="stable")
        self._users = users[order_users]
        assert self.state is not None
        row, post, channel = self.candidates(self._users, now)
        posts = self.state.posts
        if self.params.order == "engagement":
            visible = posts.likes[post] + posts.bought_likes[post] + posts.comments[post] + posts.shares[post]
            score = visible.astype(np.float64) + posts.created_at[post] * 1e-12
        else:
            score = posts.created_at[post]
        rank = np.zeros(len(row), dtype=np.int8)  # followed posts first, then suggestions
        if self.params.suggested_posts:
            s_row, s_post, s_pop = self.suggestions(self._users, now)
            known = np.isin(s_row * (len(posts) + 1) + s_post, row * (len(posts) + 1) + post)
            s_row, s_post, s_pop = s_row[~known], s_post[~known], s_pop[~known]
            row, post = np.concatenate([row, s_row]), np.concatenate([post, s_post])
            channel = np.concatenate([channel, np.full(len(s_row), OTHER, np.int8)])
            score = np.concatenate([score, s_pop])
            rank = np.concatenate([rank, np.ones(len(s_row), np.int8)])
        order = np.lexsort((post, -score, rank, row))
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
        self._skip_seen(users, pos, first, slate)
        return slate

    def _skip_seen(self, users: np.ndarray, pos: np.ndarray, first: np.ndarray, slate: Slate) -> None:
        """Rows whose slate holds a post the seen filter now reports (served since the feeds were
        built, by a sound page or the other half of a hybrid feed; rare) are refilled from further
        down their feed, passing over every such post."""
        assert self.state is not None
        seen = self.state.seen
        marked = seen.contains(users[:, None], np.maximum(slate.post_ids, 0)) & (slate.post_ids >= 0)
        for r in np.flatnonzero(marked.any(axis=1)):
            start, end = int(first[r]), int(self._end[pos[r]])
            feed = self._post[start:end]
            keep = np.flatnonzero(~seen.contains(users[r], feed))[: slate.post_ids.shape[1]]
            slate.post_ids[r] = -1
            slate.channel[r] = 0
            slate.post_ids[r, : len(keep)] = feed[keep]
            slate.channel[r, : len(keep)] = self._channel[start + keep]
            taken = int(keep[-1]) + 1 if len(keep) == slate.post_ids.shape[1] else end - start
            self._next[pos[r]] = start + taken


@numba.njit(cache=True)
def _gather(users: np.ndarray, indptr: np.ndarray, indices: np.ndarray, author_items: np.ndarray,
            reshare_items: np.ndarray, reshares: bool, created_at: np.ndarray, author: np.ndarray, now: float,
            lookback_s: float, seen_bits: np.ndarray, seen_offset: np.ndarray,
            seen_words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
                    candidate = items[followee, slot]
                    if candidate < 0 or now - created_at[candidate] > lookback_s or author[candidate] == user:
                        continue
                    word, mask = bloom_probe(user, candidate, seen_offset, seen_words)
                    if (seen_bits[word] & mask) == mask:
                        continue
                    row[m], post[m], channel[m] = r, candidate, code
                    m += 1
    return row[:m], post[:m], channel[:m]
