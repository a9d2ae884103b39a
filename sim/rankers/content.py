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
that stage.  ``retrieval_share`` of slots, and slots with no pool post the user
may be shown (none in the cell, or one already seen), go to interest retrieval
instead (channel ``EXPLORE``): a post of the topic drawn with weight
``retrieval_base ** merit`` (merit: the highest pool stage the post earned, plus
its engagement standing squashed into (0, 1)), halved every
``retrieval_half_life_h`` of its age.  So retrieval, like the pools, sends
traffic where a post has earned it: a post that failed its test pool gets
little beyond it, a post that climbs keeps earning for days and then fades.
``follow_share`` of slots show a followed account's post, if its engagement
holds up (``follow_gate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.model.state import PlatformState, Rings, bloom_probe
from sim.params import knob
from sim.rankers.base import (
    EXPLORE,
    FOLLOWING,
    MAX_STAGES,
    POOL,
    Feedback,
    PoolDecisions,
    Ranker,
    Slate,
    register,
)  # fmt: skip

IN_POOL_NONE = -1  # not (or no longer) in a pool
#: Posts per topic that ever won a promotion, kept as retrieval candidates (the newest ones): at the
#: default promotion share, days of a large world's climbers.
CLIMBER_RING = 4096
#: Retrieval candidates per topic a row remembers as not able to fill it (seen, own, already in the
#: row), so that tries landing on them are counted rather than made; past this many, such a
#: candidate is drawn and probed again like any other (the same outcome, more work).
SKIP_PER_TOPIC = 32


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
    early_look: int = knob(100, "stage-0 impressions after which a post's first signals are looked at once",
                           lo=1, unit="impressions")
    early_stop_share: float = knob(0.5, "share of posts retired at the early look: those whose smoothed score "
                                   "is below this quantile of recent early looks leave the pools without "
                                   "the rest of their test batch (0: none)", lo=0, hi=1)
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
    like_conformity: float = knob(0.08, "the pools credit a like at (1 + the like count its viewer saw) ** "
                                  "-like_conformity: the platform's estimate of how much a shown count "
                                  "raises likes (behavior.like_social_proof), divided out so that bought "
                                  "or herded likes do not raise a post's score (social-influence bias "
                                  "measured and removed: Krishnan et al., RecSys 2014)", lo=0, hi=1)
    follow_conformity: float = knob(0.05, "the same for a follow, against its author's shown follower count "
                                    "(behavior.follow_social_proof)", lo=0, hi=1)
    retrieval_share: float = knob(0.1, "share of For You slots given to interest retrieval (posts of a "
                                  "liked topic, weighted by success and age) rather than to traffic pools",
                                  lo=0, hi=1)
    retrieval_base: float = knob(100.0, "interest retrieval draws a post with weight retrieval_base ** merit, "
                                 "merit being the highest pool stage it earned plus its engagement standing "
                                 "squashed into (0, 1): each stage a post climbs multiplies the traffic "
                                 "retrieval sends it (set against the published shape of views over posts: "
                                 "docs/calibration.md)", lo=1, hi=1000)
    retrieval_half_life_h: float = knob(24.0, "a post's retrieval weight halves with every this many hours of "
                                        "age: a post that climbs keeps earning for days, then fades (Trendpop, "
                                        "VidCon 2023: 32% of a video's views in 24 h, 55% in a week)", lo=0.1,
                                        unit="h")
    retrieval_tries: int = knob(8, "weighted draws per retrieval slot until one is a post the viewer may be "
                                "shown (not seen, not their own, not already in the slate)", lo=1, hi=64)
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

    def start(self, state: PlatformState) -> None:
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
        self.looked = np.zeros(cap, bool)  # had its early look
        self.standing = np.zeros(cap, np.float32)  # last reviewed score minus its stage's mean
        self.history = [np.zeros(0) for _ in range(p.stages)]
        self.early_history = np.zeros(0)
        self.climbers = Rings(state.n_topics, CLIMBER_RING)
        self._index(np.zeros(0, np.int64))
        self._signals(0, 0.0)

    # ------------------------------------------------------------------ pools

    def _grow(self, n: int) -> None:
        if n <= len(self.stage):
            return
        new = max(n, 2 * len(self.stage))
        for name in ("stage", "stage_start", "stage_n", "stage_sum", "earned", "standing", "looked"):
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

    def _stage_means(self) -> np.ndarray:
        """:meth:`_stage_mean` of every stage, shape ``(stages,)``."""
        return np.array([self._stage_mean(s) for s in range(self.params.stages)])

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
        look = live[~due & (stage == 0) & ~self.looked[live] & (self.stage_n[live] >= self.params.early_look)]
        posts, stage = live[due], stage[due]
        decisions = self._decide(posts, stage, now) if len(posts) else None
        if len(look):
            stopped = self._early_look(look)
            if len(stopped.post):
                decisions = stopped if decisions is None else _concat(decisions, stopped)
        self._index(np.flatnonzero(self.stage[:n] >= 0))
        self._signals(n, now)
        return decisions

    def _decide(self, posts: np.ndarray, stage: np.ndarray, now: float) -> PoolDecisions:
        p = self.params
        score = np.empty(len(posts))
        threshold = np.empty(len(posts))
        for s in np.unique(stage):
            at = stage == s
            score[at] = self._smoothed(posts[at], int(s))
            threshold[at] = self._threshold(int(s))
        promoted = score > threshold
        impressions = self.stage_n[posts].copy()
        for s in np.unique(stage):
            hist = np.concatenate([self.history[s], score[stage == s]])
            self.history[s] = hist[-p.score_history :]
        first_win = promoted & (self.earned[posts] == 0)
        assert self.state is not None
        self.climbers.push(self.state.posts.topic[posts[first_win]].astype(np.int64), posts[first_win])
        self.earned[posts] = np.maximum(self.earned[posts], stage + promoted)
        self.standing[posts] = score - self._stage_means()[stage]
        top = stage + 1 >= p.stages
        self.stage[posts] = np.where(promoted & ~top, stage + 1, IN_POOL_NONE)
        self.stage_start[posts] = now
        self.stage_n[posts] = 0
        self.stage_sum[posts] = 0.0
        return PoolDecisions(post=posts.astype(np.int64), stage=stage.astype(np.int8), impressions=impressions,
                             score=score, threshold=threshold, promoted=promoted)

    def _smoothed(self, posts: np.ndarray, stage: int) -> np.ndarray:
        """Engagement score of ``posts`` over their current stage's impressions, smoothed toward the
        stage's mean by ``prior_impressions``."""
        p = self.params
        prior = self._stage_mean(stage)
        return (self.stage_sum[posts] + p.prior_impressions * prior) / (self.stage_n[posts] + p.prior_impressions)

    def _early_look(self, posts: np.ndarray) -> PoolDecisions:
        """Look once at stage-0 posts that reached ``early_look`` impressions: those scoring below
        the ``early_stop_share`` quantile of recent early looks leave the pools (reported as
        not-promoted, early-stopped reviews); the others go on to their full test batch."""
        p = self.params
        score = self._smoothed(posts, 0)
        history = self.early_history
        threshold = (float(np.quantile(history, p.early_stop_share)) if len(history) >= p.min_history
                     and p.early_stop_share > 0 else -np.inf)
        self.early_history = np.concatenate([history, score])[-p.score_history :]
        self.looked[posts] = True
        stop = score < threshold
        out = posts[stop]
        impressions = self.stage_n[out].copy()
        self.standing[out] = score[stop] - self._stage_mean(0)
        self.stage[out] = IN_POOL_NONE
        self.stage_n[out] = 0
        self.stage_sum[out] = 0.0
        n = len(out)
        return PoolDecisions(post=out.astype(np.int64), stage=np.zeros(n, np.int8), impressions=impressions,
                             score=score[stop], threshold=np.full(n, threshold), promoted=np.zeros(n, bool),
                             early=np.ones(n, bool))

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
        self.pool_start = np.ascontiguousarray(bounds[:-1].reshape(n_topics, n_stages))
        self.pool_count = np.ascontiguousarray(np.diff(bounds).reshape(n_topics, n_stages))
        # A stage's posts are drawn in proportion to their target rate (impressions / s), among
        # the stages whose audience includes the viewer: for each topic and first eligible stage
        # f (row topic * (S + 1) + f), the normalised cumulative weights of stages >= f.
        weights = self.pool_count * self.rate[None, :]  # (T, S)
        rows = n_topics * (n_stages + 1)
        eligible = np.arange(n_stages)[None, :] >= np.arange(n_stages + 1)[:, None]  # (S + 1, S)
        suffix = weights[:, None, :] * eligible[None, :, :]  # (T, S + 1, S)
        cum = np.cumsum(suffix, axis=2).reshape(rows, n_stages)
        self.suffix_total = cum[:, -1].copy()
        norm = np.where(self.suffix_total[:, None] > 0, cum / np.maximum(self.suffix_total[:, None], 1e-300), 1.0)
        self.suffix_norm = np.ascontiguousarray(norm)

    # ------------------------------------------------------------------ ranking

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        st = self.state
        assert st is not None
        p = self.params
        slate = Slate.empty(len(users), k)
        # Per slot: oversample interest candidates, then fallback_oversample from uniformly drawn
        # topics; a For You feed does not run dry while the platform has unseen posts, so rows
        # still short are topped up refill_rounds times from all topics (each round as many
        # uniform candidates as the first draw).
        n_interest = k * p.oversample
        n_uniform = k * p.fallback_oversample + p.refill_rounds * k * (p.oversample + p.fallback_oversample)
        follows = st.follows
        _draw_slates(
            np.ascontiguousarray(users, dtype=np.int64), n_interest, n_uniform,
            p.explore_share, p.retrieval_share, p.follow_share, p.retrieval_tries,
            st.interest_cum, st.affinity, self.audience_ascending,
            self.suffix_total, self.suffix_norm, self.pool_posts, self.pool_start, self.pool_count,
            self.retrieval_posts, self.retrieval_cum, self.follow_ok,
            follows.indptr, follows.indices, st.author_posts.items, st.posts.cols["author"],
            st.seen.bits, st.seen.offset, st.seen.words_per_user,
            self.rng, slate.post_ids, slate.channel)  # fmt: skip
        return slate

    def _standing(self, posts: np.ndarray) -> np.ndarray:
        """Engagement score minus the stage mean: smoothed over the current stage's impressions
        for posts in a pool, the last review's for the others (0 before any impression)."""
        p = self.params
        means = self._stage_means()
        stage = self.stage[posts].astype(np.int64)
        live = stage >= 0
        mean = means[stage.clip(0)]
        current = (self.stage_sum[posts] + p.prior_impressions * mean) / (self.stage_n[posts] + p.prior_impressions)
        return np.where(live, current - mean, self.standing[posts])

    def _signals(self, n: int, now: float) -> None:
        """Per-post inputs of the compiled draw, as of this tick: whether a followed account's post
        may fill a follow slot (``follow_gate``: its standing is not below its stage's mean), and
        the retrieval candidates of each topic with their cumulative weights.

        A topic's candidates are its recent posts that never won a promotion and the climbers that
        did (each post once); a candidate's weight is ``retrieval_base ** merit`` (merit: the highest
        stage earned plus the standing squashed into (0, 1)) halved every ``retrieval_half_life_h``
        of age."""
        st = self.state
        assert st is not None
        p = self.params
        standing = self._standing(np.arange(n))
        merit = self.earned[:n] + 1.0 / (1.0 + np.exp(-standing))
        self.follow_ok = standing >= 0 if p.follow_gate else np.ones(n, dtype=bool)
        recent, climbers = st.topic_posts.items, self.climbers.items
        candidates = np.empty((len(recent), recent.shape[1] + climbers.shape[1]), dtype=recent.dtype)
        log_weight = np.empty(candidates.shape)
        top = np.empty(len(recent))
        _candidates(recent, climbers, self.earned, merit, st.posts.cols["created_at"], n, now,
                    float(np.log(p.retrieval_base)), float(np.log(2.0) / p.retrieval_half_life_h),
                    candidates, log_weight, top)
        # exp in numpy, over the whole array (-inf, for no candidate, gives a weight of 0)
        weight = np.exp(log_weight - np.where(np.isfinite(top), top, 0.0)[:, None])
        self.retrieval_posts = candidates
        self.retrieval_cum = np.ascontiguousarray(np.cumsum(weight, axis=1))

    def observe(self, feedback: Feedback) -> None:
        st = self.state
        assert st is not None
        p = self.params
        weights = np.array([p.w_completion, p.w_watch, p.w_dwell, p.w_like, p.w_comment, p.w_share, p.w_follow])
        fb = feedback
        _count_pool_views(fb.post, fb.channel, fb.watch_fraction, fb.completed, fb.liked, fb.commented, fb.shared,
                          fb.followed, _credit(fb.shown_likes, p.like_conformity, len(fb.post)),
                          _credit(fb.shown_followers, p.follow_conformity, len(fb.post)),
                          st.posts.cols["length_s"], p.dwell_cap_s, weights, self.stage, self.stage_n,
                          self.stage_sum)


def _credit(shown: np.ndarray | None, conformity: float, m: int) -> np.ndarray:
    """Credit per reaction, shape ``(m,)``: ``(1 + shown) ** -conformity`` for the count its viewer
    saw (1 where the feedback carries no counts), so that the pools judge a reaction as if no count
    had been shown."""
    if shown is None or conformity == 0:
        return np.ones(m)
    return np.exp(-conformity * np.log1p(shown.astype(np.float64)))


def _concat(a: PoolDecisions, b: PoolDecisions) -> PoolDecisions:
    """One tick's reviews: full reviews ``a`` then early stops ``b``."""
    early = [d.early if d.early is not None else np.zeros(len(d.post), bool) for d in (a, b)]
    return PoolDecisions(**{name: np.concatenate([getattr(a, name), getattr(b, name)])
                            for name in ("post", "stage", "impressions", "score", "threshold", "promoted")},
                         early=np.concatenate(early))


# ---------------------------------------------------------------------- compiled kernels
# Candidate draws: one user at a time, candidates are drawn in the order the slate consumes them and the draw stops
# as soon as the slate is full: the first k valid candidates of the sequence are the same in
# distribution as drawing the whole sequence up front, at a fraction of the work.


@numba.njit(cache=True)
def _draw_slates(users: np.ndarray, n_interest: int, n_uniform: int, explore_share: float, retrieval_share: float,
                 follow_share: float, retrieval_tries: int, interest_cum: np.ndarray, affinity: np.ndarray,
                 audience_ascending: np.ndarray, suffix_total: np.ndarray, suffix_norm: np.ndarray,
                 pool_posts: np.ndarray, pool_start: np.ndarray, pool_count: np.ndarray,
                 retrieval_posts: np.ndarray, retrieval_cum: np.ndarray, follow_ok: np.ndarray,
                 indptr: np.ndarray, indices: np.ndarray, author_items: np.ndarray, author: np.ndarray,
                 seen_bits: np.ndarray, seen_offset: np.ndarray, seen_words: np.ndarray, rng: np.random.Generator,
                 out_ids: np.ndarray, out_channel: np.ndarray) -> None:
    """Fill ``out_ids`` / ``out_channel`` (shape ``(n, k)``, pre-filled with -1) row by row.

    Candidate j of a row is an interest candidate for ``j < n_interest`` (its topic drawn from the
    user's interests, or uniformly with probability ``explore_share``), a uniform-topic candidate
    up to ``n_interest + n_uniform``.  A candidate comes from a follow slot, else a traffic pool of
    its topic, else (a retrieval slot, an empty pool cell, or a pool post the viewer may not be
    shown) interest retrieval in that topic.  Valid candidates (not the user's own post, not
    seen, not already in the row) fill the row in order.
    """
    n_topics, n_stages = interest_cum.shape[1], pool_count.shape[1]
    k = out_ids.shape[1]
    width = author_items.shape[1]
    # Per topic, the row's retrieval candidates known not to fill it (indices, ascending).
    skip_index = np.empty((n_topics, SKIP_PER_TOPIC), dtype=np.int64)
    skip_n = np.zeros(n_topics, dtype=np.int64)
    for r in range(len(users)):
        user = users[r]
        filled = 0
        skip_n[:] = 0
        for j in range(n_interest + n_uniform):
            if filled == k:
                break
            channel = FOLLOWING
            post = -1
            degree = 0
            if follow_share > 0 and rng.random() < follow_share:
                start = indptr[user]
                degree = indptr[user + 1] - start
                if degree > 0:
                    followee = indices[start + int(rng.random() * degree)]
                    post = author_items[followee, int(rng.random() * width)]
                    if 0 <= post < len(follow_ok) and not follow_ok[post]:
                        post, degree = -1, 0  # judged by engagement too: the slot goes to For You
            if degree == 0:
                if j < n_interest and rng.random() >= explore_share:
                    u = rng.random()
                    topic = 0
                    while topic < n_topics - 1 and interest_cum[user, topic] < u:
                        topic += 1
                else:
                    topic = min(int(rng.random() * n_topics), n_topics - 1)
                # The stages whose audience includes the viewer are a suffix [first, S) of the ladder.
                a = affinity[user, topic]
                first = n_stages
                while first > 0 and audience_ascending[n_stages - first] <= a:
                    first -= 1
                cell = topic * (n_stages + 1) + first
                post = -1
                if suffix_total[cell] > 0 and rng.random() >= retrieval_share:
                    u = rng.random()
                    stage = 0
                    while stage < n_stages - 1 and suffix_norm[cell, stage] <= u:
                        stage += 1
                    count = pool_count[topic, stage]
                    if count > 0:
                        post = pool_posts[pool_start[topic, stage] + min(int(rng.random() * count), count - 1)]
                    channel = POOL + stage
                if not _eligible(post, user, r, filled, author, seen_bits, seen_offset, seen_words, out_ids):
                    # No pool post for this user (a retrieval slot, an empty cell, or one seen, own or
                    # already in the slate): interest retrieval in the same topic.
                    post = _retrieve(topic, retrieval_tries, retrieval_posts, retrieval_cum, user, r, filled,
                                     author, seen_bits, seen_offset, seen_words, out_ids, rng,
                                     skip_index[topic], skip_n[topic : topic + 1])
                    channel = EXPLORE
                if post < 0:
                    continue
            elif not _eligible(post, user, r, filled, author, seen_bits, seen_offset, seen_words, out_ids):
                continue
            out_ids[r, filled] = post
            out_channel[r, filled] = channel
            filled += 1


@numba.njit(cache=True, inline="always")
def _eligible(post: int, user: int, row: int, filled: int, author: np.ndarray, seen_bits: np.ndarray,
              seen_offset: np.ndarray, seen_words: np.ndarray, out_ids: np.ndarray) -> bool:
    """Whether ``post`` may fill the next slot of ``user``'s row: a post, not the user's own, not
    seen (the seen filter), not already in the row."""
    if post < 0 or author[post] == user:
        return False
    word, mask = bloom_probe(user, post, seen_offset, seen_words)
    if (seen_bits[word] & mask) == mask:
        return False
    for i in range(filled):
        if out_ids[row, i] == post:
            return False
    return True


@numba.njit(cache=True)
def _retrieve(topic: int, tries: int, retrieval_posts: np.ndarray, retrieval_cum: np.ndarray, user: int, row: int,
              filled: int, author: np.ndarray, seen_bits: np.ndarray, seen_offset: np.ndarray,
              seen_words: np.ndarray, out_ids: np.ndarray, rng: np.random.Generator, skip: np.ndarray,
              n_skip: np.ndarray) -> int:
    """Interest retrieval: a candidate of the topic drawn in proportion to its weight (success and
    age, see :meth:`ContentRanker._signals`), up to ``tries`` times until one may fill the slot;
    -1 where none does.

    Tries that would land on a candidate already known not to fill the row (drawn before for it
    and found seen or the viewer's own, or already in the row: none of that changes while the row
    is filled) are not made one by one: their number before the next try that lands elsewhere is
    geometric, drawn at once, and that try is drawn among the other candidates by weight.  The
    outcome has the distribution of ``tries`` plain weighted draws; a viewer who has seen a
    topic's few heavy candidates costs a draw or two, not ``tries`` probes.  The known candidates
    are the first ``n_skip[0]`` of ``skip`` (indices into the topic's candidates, ascending, at
    most ``SKIP_PER_TOPIC``); each candidate drawn joins them, shown or not."""
    cum = retrieval_cum[topic]
    n = len(cum)
    total = cum[-1]
    if total <= 0:
        return -1
    left = tries
    while left > 0:
        known = 0.0
        for s in range(n_skip[0]):
            known += cum[skip[s]] - _start(cum, skip[s])
        rest = total - known
        if rest <= total * 1e-12:
            return -1  # every try would land on a known candidate
        if known > 0:
            # Tries landing on known candidates before one that does not: P(at least m) = q ** m.
            wasted = np.floor(np.log(1.0 - rng.random()) / np.log(known / total))
            if wasted >= left:
                return -1
            left -= int(wasted)
        left -= 1
        # The try that lands elsewhere: a point on the line of the other candidates, carried past
        # each known candidate's interval.
        x = rng.random() * rest
        for s in range(n_skip[0]):
            i = skip[s]
            if x < _start(cum, i):
                break
            x += cum[i] - _start(cum, i)
        i = min(int(np.searchsorted(cum, x, side="right")), n - 1)
        post = retrieval_posts[topic, i]
        showable = _eligible(post, user, row, filled, author, seen_bits, seen_offset, seen_words, out_ids)
        _skip(i, skip, n_skip)  # shown now, or never in this row
        if showable:
            return post
    return -1


@numba.njit(cache=True, inline="always")
def _start(cum: np.ndarray, i: int) -> float:
    """Where candidate ``i``'s interval starts on the line of cumulative weights ``cum`` (it ends
    at ``cum[i]``)."""
    return cum[i - 1] if i > 0 else 0.0


@numba.njit(cache=True, inline="always")
def _skip(index: int, skip: np.ndarray, n_skip: np.ndarray) -> None:
    """Insert ``index`` into the first ``n_skip[0]`` of ``skip`` (ascending); no-op when it is there
    already (a rounding edge can land on a known candidate's interval) or ``skip`` is full."""
    at = 0
    while at < n_skip[0] and skip[at] < index:
        at += 1
    if (at < n_skip[0] and skip[at] == index) or n_skip[0] == len(skip):
        return
    for s in range(n_skip[0], at, -1):
        skip[s] = skip[s - 1]
    skip[at] = index
    n_skip[0] += 1


@numba.njit(cache=True)
def _candidates(recent: np.ndarray, climbers: np.ndarray, earned: np.ndarray, merit: np.ndarray,
                created_at: np.ndarray, n: int, now: float, log_base: float, decay_per_h: float,
                out: np.ndarray, log_weight: np.ndarray, top: np.ndarray) -> None:
    """Each topic's retrieval candidates (``out``, shape ``(T, ring + climber ring)``): its recent
    posts (``recent``) that never won a promotion, then its climbers; -1 where there is none.  Their
    log weights ``merit * log_base - age_h * decay_per_h`` go to ``log_weight`` (-inf for none) and
    each topic's largest to ``top`` (-inf for a topic with none)."""
    n_topics, width = recent.shape
    for t in range(n_topics):
        best = -np.inf
        for c in range(out.shape[1]):
            post = recent[t, c] if c < width else climbers[t, c - width]
            if c < width and post < n and earned[max(post, 0)] != 0:
                post = -1  # it won a promotion: listed once, among the climbers
            if post < 0 or post >= n:
                out[t, c] = -1 if c < width else post
                log_weight[t, c] = -np.inf
                continue
            out[t, c] = post
            age_h = (now - created_at[post]) / 3600.0
            w = merit[post] * log_base - age_h * decay_per_h
            log_weight[t, c] = w
            best = max(best, w)
        top[t] = best


@numba.njit(cache=True)
def _count_pool_views(post: np.ndarray, channel: np.ndarray, fraction: np.ndarray, completed: np.ndarray,
                      liked: np.ndarray, commented: np.ndarray, shared: np.ndarray, followed: np.ndarray,
                      like_credit: np.ndarray, follow_credit: np.ndarray, length_s: np.ndarray,
                      dwell_cap_s: float, weights: np.ndarray, stage: np.ndarray, stage_n: np.ndarray,
                      stage_sum: np.ndarray) -> None:
    """Add each pool impression to its post's current stage: one view and its engagement value
    (``weights``: completion, watch fraction, dwell, like, comment, share, follow; a like and a
    follow count ``like_credit`` and ``follow_credit`` of their weight).  Impressions served by an
    earlier stage of the post (before a promotion) do not count."""
    for i in range(len(post)):
        post_id = post[i]
        if channel[i] < POOL or stage[post_id] != channel[i] - POOL:
            continue
        dwell = min(fraction[i] * length_s[post_id], dwell_cap_s) / dwell_cap_s
        stage_n[post_id] += 1
        stage_sum[post_id] += (weights[0] * completed[i] + weights[1] * fraction[i] + weights[2] * dwell
                               + weights[3] * like_credit[i] * liked[i] + weights[4] * commented[i]
                               + weights[5] * shared[i] + weights[6] * follow_credit[i] * followed[i])
