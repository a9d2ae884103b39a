"""The content-graph ranker ("For You"): interest retrieval plus staged traffic pools.

Every new post enters stage 0: a pool of ``pool_first`` impressions among
users whose interest in its topic is at least ``core_affinity`` of their main
interest, whatever its author's follower count.  When a stage's impressions
are used up (or its time runs out) the ranker reviews the post: its smoothed
engagement score over *that stage's* impressions is compared with the
``1 - promote_share`` quantile of recent scores at the same stage; above it,
the post moves to a pool ``pool_growth`` times larger whose audience reaches
further from the core topic (affinity threshold x ``widening`` per stage).
Follower count is not an input anywhere in this module.

Pools have priority: a slot draws a topic (by interest, or uniformly for
``explore_share`` of slots), then a pool stage whose audience includes the user
(in proportion to the stage's posts times its target rate), then a post of
that stage.  ``retrieval_share`` of slots, and slots with no eligible pool
post, go to interest retrieval instead (a recent post of the topic, channel
``EXPLORE``: of ``retrieval_draws`` recent posts, the one that climbed
highest in the pools, then the one whose engagement stands highest above its
stage's mean); ``follow_share`` of slots show a followed account's post, if its
engagement holds up (``follow_gate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import knob
from sim.rankers.base import (
    EXPLORE,
    FOLLOWING,
    MAX_STAGES,
    POOL,
    Feedback,
    PoolDecisions,
    Ranker,
    Slate,
    duplicate_in_row,
    first_k_valid,
    register,
)  # fmt: skip

IN_POOL_NONE = -1  # not (or no longer) in a pool


@dataclass(frozen=True)
class ContentParams:
    stages: int = knob(5, "number of traffic-pool stages", lo=1, hi=MAX_STAGES)
    pool_first: float = knob(300.0, "impressions of the first pool", lo=1, unit="impressions")
    pool_growth: float = knob(10.0, "each stage's pool is this many times the previous one", lo=1, hi=100)
    first_stage_hours: float = knob(1.0, "target time to fill the first pool", lo=0.01, unit="h")
    stage_hours_growth: float = knob(2.5, "each stage's target fill time is this many times the previous",
                                     lo=1, hi=20)
    timeout_factor: float = knob(3.0, "a stage is reviewed after this many times its target time even "
                                 "if its pool is not used up", lo=1, hi=100)
    core_affinity: float = knob(0.5, "stage-0 audience: users whose affinity to the topic is at least this",
                                lo=0, hi=1)
    widening: float = knob(0.55, "each later stage's affinity threshold is this times the previous one",
                           lo=0, hi=1)
    promote_share: float = knob(0.15, "share of reviewed posts promoted at each stage (the threshold is the "
                                "running 1 - share quantile of recent scores at that stage)", lo=0, hi=1)
    score_history: int = knob(2000, "recent reviews per stage the threshold quantile is taken over", lo=10)
    min_history: int = knob(30, "reviews a stage needs before its own quantile is used (a lower "
                            "stage's is used until then)", lo=1)
    prior_impressions: float = knob(30.0, "pseudo-impressions at the stage's mean score that smooth a "
                                    "post's score", lo=0)
    w_completion: float = knob(4.0, "score weight of a completion (the dominant signal)", lo=0)
    w_watch: float = knob(1.0, "score weight of the watch fraction", lo=0)
    w_dwell: float = knob(2.0, "score weight of dwell time, min(watch seconds, dwell_cap_s) / dwell_cap_s",
                          lo=0)
    dwell_cap_s: float = knob(60.0, "dwell time that earns the full dwell weight", lo=1, unit="s")
    w_like: float = knob(2.0, "score weight of a like", lo=0)
    w_comment: float = knob(6.0, "score weight of a comment", lo=0)
    w_share: float = knob(12.0, "score weight of a share", lo=0)
    w_follow: float = knob(15.0, "score weight of a follow", lo=0)
    retrieval_share: float = knob(0.1, "share of For You slots given to interest retrieval (recent posts "
                                  "of a liked topic) rather than to traffic pools", lo=0, hi=1)
    retrieval_draws: int = knob(3, "recent posts drawn per retrieval slot; the one that earned the "
                                "highest pool stage is shown (ties: the best engagement standing)", lo=1, hi=32)
    explore_share: float = knob(0.1, "share of slots whose topic is drawn uniformly, not by interest",
                                lo=0, hi=1)
    follow_share: float = knob(0.05, "share of slots showing a followed account's post", lo=0, hi=1)
    follow_gate: bool = knob(True, "follow slots show a followed account's post only while its engagement "
                             "score is at least its stage's mean: For You judges followed posts by "
                             "engagement too")
    oversample: int = knob(2, "candidates drawn per slot (unseen ones fill the slate)", lo=1, hi=20)
    fallback_oversample: int = knob(1, "candidates per slot drawn from uniformly chosen topics, used "
                                    "after the interest candidates", lo=0, hi=20)
    refill_rounds: int = knob(2, "extra draws from all topics for slates left short by seen posts", lo=0,
                              hi=10)


@register
class ContentRanker(Ranker):
    """For You: interest retrieval, exploration and staged traffic pools."""

    name = "content"
    Params = ContentParams

    def start(self, state) -> None:  # type: ignore[no-untyped-def]
        super().start(state)
        p = self.params
        s = np.arange(p.stages)
        self.quota = p.pool_first * p.pool_growth**s  # (S,) impressions
        self.stage_seconds = 3600.0 * p.first_stage_hours * p.stage_hours_growth**s
        self.rate = self.quota / self.stage_seconds  # target impressions / s per post
        self.audience = p.core_affinity * p.widening**s  # (S,) minimum affinity, decreasing
        self.audience_ascending = self.audience[::-1].copy()
        self.n_seen_posts = 0
        cap = 1024
        self.stage = np.full(cap, IN_POOL_NONE, np.int8)
        self.stage_start = np.zeros(cap)
        self.stage_n = np.zeros(cap, np.int32)
        self.stage_sum = np.zeros(cap)
        self.earned = np.zeros(cap, np.int8)  # highest stage reached
        self.standing = np.zeros(cap, np.float32)  # last reviewed score minus its stage's mean
        self.history = [np.zeros(0) for _ in range(p.stages)]
        self._index(np.zeros(0, np.int64))

    # ------------------------------------------------------------------ pools

    def _grow(self, n: int) -> None:
        if n <= len(self.stage):
            return
        new = max(n, 2 * len(self.stage))
        for name in ("stage", "stage_start", "stage_n", "stage_sum", "earned", "standing"):
            old = getattr(self, name)
            grown = np.full(new, IN_POOL_NONE, old.dtype) if name == "stage" else np.zeros(new, old.dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)

    def _threshold(self, stage: int) -> float:
        for s in range(stage, -1, -1):
            hist = self.history[s]
            if len(hist) >= self.params.min_history:
                return float(np.quantile(hist, 1.0 - self.params.promote_share))
        return np.inf

    def _stage_mean(self, stage: int) -> float:
        for s in range(stage, -1, -1):
            if len(self.history[s]):
                return float(self.history[s].mean())
        return 0.0

    def review(self, now: float) -> PoolDecisions | None:
        st = self.state
        assert st is not None
        n = len(st.posts)
        self._grow(n)
        new = np.arange(self.n_seen_posts, n)
        self.stage[new] = 0
        self.stage_start[new] = st.posts.created_at[new]
        self.n_seen_posts = n
        live = np.flatnonzero(self.stage[:n] >= 0)
        stage = self.stage[live].astype(np.int64)
        due = (self.stage_n[live] >= self.quota[stage]) | (
            now - self.stage_start[live] >= self.params.timeout_factor * self.stage_seconds[stage])
        posts, stage = live[due], stage[due]
        decisions = None
        if len(posts):
            decisions = self._decide(posts, stage, now)
        self._index(np.flatnonzero(self.stage[:n] >= 0))
        return decisions

    def _decide(self, posts: np.ndarray, stage: np.ndarray, now: float) -> PoolDecisions:
        p = self.params
        score = np.empty(len(posts))
        threshold = np.empty(len(posts))
        for s in np.unique(stage):
            at = stage == s
            prior = self._stage_mean(int(s))
            n_imp = self.stage_n[posts[at]]
            score[at] = (self.stage_sum[posts[at]] + p.prior_impressions * prior) / (n_imp + p.prior_impressions)
            threshold[at] = self._threshold(int(s))
        promoted = score > threshold
        impressions = self.stage_n[posts].copy()
        for s in np.unique(stage):
            hist = np.concatenate([self.history[s], score[stage == s]])
            self.history[s] = hist[-p.score_history :]
        self.earned[posts] = np.maximum(self.earned[posts], stage + promoted)
        self.standing[posts] = score - np.array([self._stage_mean(int(s)) for s in range(p.stages)])[stage]
        top = stage + 1 >= p.stages
        self.stage[posts] = np.where(promoted & ~top, stage + 1, IN_POOL_NONE)
        self.stage_start[posts] = now
        self.stage_n[posts] = 0
        self.stage_sum[posts] = 0.0
        return PoolDecisions(post=posts.astype(np.int64), stage=stage.astype(np.int8), impressions=impressions,
                             score=score, threshold=threshold, promoted=promoted)

    def _index(self, live: np.ndarray) -> None:
        """Group live pool posts by (topic, stage) for O(1) sampling."""
        st = self.state
        assert st is not None
        n_topics, n_stages = st.n_topics, self.params.stages
        topic = st.posts.topic[live].astype(np.int64)
        cell = topic * n_stages + self.stage[live]
        order = np.argsort(cell, kind="stable")
        self.pool_posts = live[order]
        bounds = np.searchsorted(cell[order], np.arange(n_topics * n_stages + 1))
        self.pool_start = bounds[:-1].reshape(n_topics, n_stages)
        self.pool_count = np.diff(bounds).reshape(n_topics, n_stages)
        # A stage's posts are drawn in proportion to their target rate (impressions / s), among
        # the stages whose audience includes the viewer: for each topic and first eligible stage
        # f, the cumulative weights of stages >= f, normalised and shifted by the row index so
        # that one searchsorted draws a stage for any batch (see _draw).
        weights = self.pool_count * self.rate[None, :]  # (T, S)
        rows = n_topics * (n_stages + 1)
        eligible = np.arange(n_stages)[None, :] >= np.arange(n_stages + 1)[:, None]  # (S + 1, S)
        suffix = weights[:, None, :] * eligible[None, :, :]  # (T, S + 1, S)
        cum = np.cumsum(suffix, axis=2).reshape(rows, n_stages)
        self.suffix_total = cum[:, -1].copy()
        norm = np.where(self.suffix_total[:, None] > 0, cum / np.maximum(self.suffix_total[:, None], 1e-300), 1.0)
        self.suffix_flat = (norm + np.arange(rows)[:, None]).ravel()

    # ------------------------------------------------------------------ ranking

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        slate = self._draw(users, k, self.params.explore_share)
        # A For You feed does not run dry while the platform has unseen posts:
        # short slates are topped up from all topics.
        for _ in range(self.params.refill_rounds):
            short = np.flatnonzero((slate.post_ids < 0).any(axis=1))
            if len(short) == 0:
                break
            extra = self._draw(users[short], k, 1.0)
            merged_ids = np.hstack([slate.post_ids[short], extra.post_ids])
            merged_ch = np.hstack([slate.channel[short], extra.channel])
            valid = (merged_ids >= 0) & ~duplicate_in_row(merged_ids)
            top = first_k_valid(merged_ids, merged_ch, valid, k)
            slate.post_ids[short], slate.channel[short] = top.post_ids, top.channel
        return slate

    def _draw(self, users: np.ndarray, k: int, explore_share: float) -> Slate:
        """One candidate per slot x ``oversample``, as flat arrays; the first ``k`` valid ones per user."""
        st = self.state
        assert st is not None
        p = self.params
        rng = self.rng
        # Each row: k x oversample candidates by interest, then k x fallback_oversample from
        # uniformly drawn topics, used where the user has already seen the first ones.
        b, c_main = len(users), k * p.oversample
        c = c_main + k * p.fallback_oversample
        row = np.repeat(np.arange(b), c)
        viewer = users[row]
        m = len(row)
        # A topic per candidate: by interest, or uniformly for exploration.
        topic = st.draw_topics(users, c, rng).ravel()
        column = np.tile(np.arange(c), b)
        explore = np.flatnonzero((rng.random(m) < explore_share) | (column >= c_main))
        topic[explore] = rng.integers(0, st.n_topics, len(explore))
        # The stages whose audience includes the viewer are a suffix [first, S) of the ladder.
        first = p.stages - np.searchsorted(self.audience_ascending, st.affinity[viewer, topic], side="right")
        cell = topic * (p.stages + 1) + first
        in_pool = (self.suffix_total[cell] > 0) & (rng.random(m) >= p.retrieval_share)
        cand = np.full(m, -1, np.int64)
        channel = np.full(m, EXPLORE, np.int8)
        pool = np.flatnonzero(in_pool)
        if len(pool):
            cell_p = cell[pool]
            pos = np.searchsorted(self.suffix_flat, cell_p + rng.random(len(pool)), side="right")
            stage = (pos - cell_p * p.stages).clip(0, p.stages - 1)
            t = topic[pool]
            count = self.pool_count[t, stage]
            pick = self.pool_start[t, stage] + (rng.random(len(pool)) * count).astype(np.int64)
            cand[pool] = np.where(count > 0, self.pool_posts[pick.clip(0, len(self.pool_posts) - 1)], -1)
            channel[pool] = POOL + stage
        rest = np.flatnonzero(~in_pool)
        cand[rest] = self._retrieve(topic[rest])
        self._mix_following(viewer, cand, channel)
        valid = cand >= 0
        valid[valid] = st.posts.author[cand[valid]] != viewer[valid]
        idx = np.flatnonzero(valid)
        valid[idx] = ~st.seen.contains(viewer[idx], cand[idx])
        idx = np.flatnonzero(valid)
        _, first_seen = np.unique(row[idx] * (len(st.posts) + 1) + cand[idx], return_index=True)
        valid[idx] = False
        valid[idx[first_seen]] = True
        return first_k_valid(cand.reshape(b, c), channel.reshape(b, c), valid.reshape(b, c), k)

    def _retrieve(self, topic: np.ndarray) -> np.ndarray:
        """Interest retrieval: of ``retrieval_draws`` recent posts of each topic, the one that
        earned the highest pool stage (ties at random); -1 where a topic has no posts."""
        ring = self.state.topic_posts  # type: ignore[union-attr]
        filled = np.minimum(ring.head, ring.items.shape[1])[topic]
        m = self.params.retrieval_draws
        slot = (self.rng.random((len(topic), m)) * filled[:, None]).astype(np.int64)
        drawn = ring.items[topic[:, None], slot]
        # The highest stage earned wins; within a stage, the better engagement standing (in (0, 1)).
        safe = drawn.clip(0)
        merit = self.earned[safe] + 1.0 / (1.0 + np.exp(-self._standing(safe.ravel()).reshape(safe.shape)))
        best = np.take_along_axis(drawn, merit.argmax(axis=1)[:, None], axis=1)[:, 0]
        return np.where(filled > 0, best, -1)

    def _mix_following(self, viewer: np.ndarray, cand: np.ndarray, channel: np.ndarray) -> None:
        """Replace ``follow_share`` of the candidates by a random recent post of a followed account."""
        st = self.state
        assert st is not None
        if self.params.follow_share <= 0:
            return
        slots = np.flatnonzero(self.rng.random(len(cand)) < self.params.follow_share)
        indptr = st.follows.indptr
        start = indptr[viewer[slots]]
        degree = indptr[viewer[slots] + 1] - start
        has = degree > 0
        slots, start, degree = slots[has], start[has], degree[has]
        edge = start + (self.rng.random(len(slots)) * degree).astype(np.int64)
        followee = st.follows.indices[edge]
        width = st.author_posts.items.shape[1]
        post = st.author_posts.items[followee, self.rng.integers(0, width, len(slots))]
        keep = post >= 0
        if self.params.follow_gate:
            keep &= self._standing(post.clip(0)) >= 0
        cand[slots[keep]] = post[keep]
        channel[slots[keep]] = FOLLOWING

    def _standing(self, posts: np.ndarray) -> np.ndarray:
        """Engagement score minus the stage mean: smoothed over the current stage's impressions
        for posts in a pool, the last review's for the others (0 before any impression)."""
        p = self.params
        means = np.array([self._stage_mean(s) for s in range(p.stages)])
        stage = self.stage[posts].astype(np.int64)
        live = stage >= 0
        mean = means[stage.clip(0)]
        current = (self.stage_sum[posts] + p.prior_impressions * mean) / (self.stage_n[posts] + p.prior_impressions)
        return np.where(live, current - mean, self.standing[posts])

    def observe(self, feedback: Feedback) -> None:
        st = self.state
        assert st is not None
        p = self.params
        pool = feedback.channel >= POOL
        post = feedback.post[pool]
        # Only impressions served by the post's current stage count toward it.
        current = self.stage[post] == (feedback.channel[pool] - POOL)
        post = post[current]
        fraction = feedback.watch_fraction[pool][current]
        dwell = np.minimum(fraction * st.posts.length_s[post], p.dwell_cap_s) / p.dwell_cap_s
        value = (p.w_completion * feedback.completed[pool][current]
                 + p.w_watch * fraction + p.w_dwell * dwell
                 + p.w_like * feedback.liked[pool][current]
                 + p.w_comment * feedback.commented[pool][current]
                 + p.w_share * feedback.shared[pool][current]
                 + p.w_follow * feedback.followed[pool][current])
        np.add.at(self.stage_n, post, 1)
        np.add.at(self.stage_sum, post, value)
