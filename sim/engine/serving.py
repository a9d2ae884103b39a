"""Serving a tick's sessions: slates from the ranker in rounds, each user watching until their
session's time is used, and the reactions to what they watched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from sim.config import DAY, Experiment
from sim.engine import commerce as commerce_
from sim.engine import inspiration as inspiration_
from sim.engine import sounds as sounds_
from sim.engine.commerce import Commerce
from sim.engine.inspiration import Inspiration
from sim.engine.platform import Platform, day_index
from sim.engine.sounds import SoundState
from sim.model import behavior
from sim.model.world import Users
from sim.rankers import Feedback
from sim.rankers.base import Slate, channel_group

FIRST_SLATE = 8  # slate length of a session's first round
MIN_SLATE = 4
MAX_SLATE = 64
#: Later slates are long enough for this quantile of the remaining sessions.
SLATE_QUANTILE = 0.9
#: Post counters per channel group of :func:`~sim.rankers.base.channel_group`, in group order.
VIEWS_BY_GROUP = ("views_following", "views_reshare", "views_pool", "views_explore", "views_other")

#: The ranker's slates for ``(users, now, k)``: shape ``(len(users), k)``.
Rank = Callable[[np.ndarray, float, int], Slate]
#: Who is told of each round's impressions (the ranker, the recorder), with the time (s).
Observe = Callable[[Feedback, float], None]


@dataclass
class Serving:
    """Time budgets and time watched, per day and user, and impressions served.

    Attributes
    ----------
    budget_by_day : np.ndarray
        Shape ``(n_days, n_users)`` float32: session seconds users started each day.
    watch_by_day : np.ndarray
        Shape ``(n_days, n_users)`` float32: seconds they spent watching (swipes included).
    reference : np.ndarray
        Shape ``(n_users,)`` float32: each user's reference, the exponentially weighted mean appeal
        of what they watched lately (``behavior.reference_memory``), where a post's appeal to a
        viewer is ``watch_quality x quality + watch_affinity x affinity``.
    anchor : np.ndarray
        Shape ``(n_users,)`` float32: the appeal of an average post in a feed that follows the
        user's interests, where every reference starts.  Viewers judge quality by how far their
        reference has moved from it.
    shown : np.ndarray
        Shape ``(2, n_users)`` float32: each user's references for the counts they are shown, the
        exponentially weighted mean log1p of the like counts (row 0) and of the authors' follower
        counts (row 1) of what they watched lately; NaN before their first impression.  Social
        proof is read against them (:func:`sim.model.behavior.shown_proof`).
    impressions : int
        Impressions served so far, warm-up included.
    """

    budget_by_day: np.ndarray
    watch_by_day: np.ndarray
    reference: np.ndarray
    anchor: np.ndarray
    shown: np.ndarray
    impressions: int = 0


def new_serving(exp: Experiment, users: Users) -> Serving:
    """Empty budgets for every day of the warm-up and the run; every user's reference at its anchor."""
    n_days = int(np.ceil((exp.warmup_s + exp.horizon_s) / DAY)) + 1
    anchor = np.empty(users.n, dtype=np.float32)
    step = 1 << 16
    for start in range(0, users.n, step):  # in slices: float64 temporaries of every row are large
        interest = users.interest[start : start + step].astype(np.float64)
        matched = (interest * users.affinity[start : start + step]).sum(axis=1) / interest.sum(axis=1)
        anchor[start : start + step] = exp.behavior.watch_affinity * matched
    return Serving(budget_by_day=np.zeros((n_days, users.n), dtype=np.float32),
                   watch_by_day=np.zeros((n_days, users.n), dtype=np.float32),
                   reference=anchor.copy(), anchor=anchor, shown=np.full((2, users.n), np.nan, np.float32))


@dataclass
class Reactors:
    """The mechanisms an impression feeds besides the counters: sounds, products, inspiration."""

    sounds: SoundState
    commerce: Commerce
    inspiration: Inspiration


def serve(serving: Serving, platform: Platform, reactors: Reactors, rank: Rank, observe: Observe,
          users: np.ndarray, seconds: np.ndarray, now: float, rng: np.random.Generator) -> None:
    """Serve one tick's sessions (``users`` and their ``seconds``, shape ``(n_sessions,)``) in rounds
    of slates until every session's time is used or its feed runs out.  ``rng`` is the behaviour stream."""
    platform.state.now = now
    day = day_index(platform, now)
    np.add.at(serving.budget_by_day[day], users, seconds.astype(np.float32))
    remaining = seconds.astype(np.float64)
    position = np.zeros(len(users), dtype=np.int32)
    active = np.arange(len(users))
    k = FIRST_SLATE
    while len(active):
        slate = sounds_.open_sound_pages(reactors.sounds, platform, users[active], rank(users[active], now, k))
        spent, served, exhausted = consume(platform, reactors, observe, users[active], slate, remaining[active],
                                           position[active], serving, now, rng)
        serving.impressions += int(served.sum())
        np.add.at(serving.watch_by_day[day], users[active], spent.astype(np.float32))
        remaining[active] -= spent
        position[active] += served
        active = active[(remaining[active] > 0) & ~exhausted]
        if len(active):
            per_view = max(float(spent.sum()) / max(int(served.sum()), 1), 1.0)
            # Slates long enough for most remaining sessions: fewer, larger rounds.
            k = int(np.clip(np.ceil(np.quantile(remaining[active], SLATE_QUANTILE) / per_view), MIN_SLATE, MAX_SLATE))


def consume(platform: Platform, reactors: Reactors, observe: Observe, users: np.ndarray, slate: Slate,
            remaining: np.ndarray, position: np.ndarray, serving: Serving, now: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Watch a slate (shape ``(b, k)`` for ``b`` users): each user swipes until their session's
    ``remaining`` seconds are used.  ``position``: how many posts each has seen this session;
    ``serving``: its references are read for the slate's viewers and then moved toward what
    they watched.

    Returns per user, shape ``(b,)`` each, the seconds spent, the impressions served and whether
    the feed ran out."""
    b, k = slate.post_ids.shape
    valid = np.logical_and.accumulate(slate.post_ids >= 0, axis=1)
    posts, u = platform.posts, platform.users
    row, col = np.nonzero(valid)
    post = slate.post_ids[row, col]
    viewer = users[row]
    beh = platform.exp.behavior
    topic = posts.topic[post].astype(np.int64)
    affinity = platform.state.affinity[viewer, topic]
    polish = (1.0 - posts.authenticity[post]) * u.polish_sensitivity[viewer]
    # Quality as the viewer perceives it: against what their feed showed them lately.  The shift is
    # in watch-logit units, so it moves every response that reads quality in proportion.
    moved = serving.reference[viewer] - serving.anchor[viewer]
    quality = posts.quality[post] - beh.quality_reference * moved / max(beh.watch_quality, 1e-9)
    length = posts.length_s[post]
    # The counts the viewer is shown, read against those their feed showed them lately.
    shown_likes = posts.likes[post] + posts.bought_likes[post]
    shown_followers = platform.state.follower_counts[posts.author[post]]
    like_proof = behavior.shown_proof(beh, shown_likes, serving.shown[0, viewer])
    follow_proof = behavior.shown_proof(beh, shown_followers, serving.shown[1, viewer])
    fraction = behavior.watch_fraction(beh, quality, affinity, polish, length, rng)
    seconds = np.zeros((b, k))
    seconds[row, col] = behavior.watch_seconds(beh, fraction, length)
    before = np.cumsum(seconds, axis=1) - seconds
    taken = valid & (before < remaining[:, None])
    keep = taken[row, col]
    spent = (seconds * taken).sum(axis=1)
    served = taken.sum(axis=1).astype(np.int32)
    exhausted = ~valid.all(axis=1) & (served == valid.sum(axis=1))
    watched = Watched(viewer[keep], post[keep], slate.channel[row, col][keep], (position[row] + col)[keep],
                      fraction[keep], affinity[keep], polish[keep], quality[keep], shown_likes[keep],
                      shown_followers[keep], like_proof[keep], follow_proof[keep])
    appeal = beh.watch_quality * posts.quality[post] + beh.watch_affinity * affinity
    update_reference(serving.reference, users, served, appeal[keep], row[keep], beh.reference_memory)
    for i, counts in enumerate((shown_likes, shown_followers)):
        update_reference(serving.shown[i], users, served, np.log1p(counts[keep].astype(np.float64)), row[keep],
                         beh.reference_memory)
    observe(react(platform, reactors, watched, now, rng), now)
    return spent, served, exhausted


def update_reference(reference: np.ndarray, users: np.ndarray, served: np.ndarray, appeal: np.ndarray,
                     row: np.ndarray, memory: float) -> None:
    """Move each viewer's reference toward the appeal of what they just watched.

    ``users`` (shape ``(b,)``) watched ``served[i]`` posts each; ``appeal`` and ``row`` (shape
    ``(m,)``) are the watched posts' appeal to their viewer and the viewer's index into ``users``.
    An exponential memory of ``memory`` impressions, applied to the round's mean: after ``n`` views
    of mean appeal ``a`` the reference is ``r (1 - 1/memory)^n + a (1 - (1 - 1/memory)^n)``; a
    reference still NaN (no impression yet) becomes ``a``."""
    watching = served > 0
    if not watching.any():
        return
    mean = np.bincount(row, weights=appeal, minlength=len(users))[watching] / served[watching]
    keep = (1.0 - 1.0 / memory) ** served[watching]
    who = users[watching]
    old = reference[who]
    reference[who] = np.where(np.isnan(old), mean, old * keep + mean * (1.0 - keep)).astype(np.float32)


@dataclass
class Watched:
    """Impressions watched in one round, in arrival order: each array has shape ``(m,)``.

    ``position`` is the impression's place in its session, ``fraction`` the share of the post
    watched, ``polish`` the viewer's penalty for the post's polish, ``shown_likes`` and
    ``shown_followers`` the counts the viewer saw (the post's likes, bought ones included, and its
    author's followers), ``like_proof`` and ``follow_proof`` those counts as social proof
    (:func:`sim.model.behavior.shown_proof`)."""

    viewer: np.ndarray
    post: np.ndarray
    channel: np.ndarray
    position: np.ndarray
    fraction: np.ndarray
    affinity: np.ndarray
    polish: np.ndarray
    quality: np.ndarray
    shown_likes: np.ndarray
    shown_followers: np.ndarray
    like_proof: np.ndarray
    follow_proof: np.ndarray


def react(platform: Platform, reactors: Reactors, w: Watched, now: float, rng: np.random.Generator) -> Feedback:
    """Draw reactions for watched impressions and update every counter (the round's state changes
    happen here); returns what the ranker and the recorder are told."""
    beh = platform.exp.behavior
    posts, st = platform.posts, platform.state
    viewer, post = w.viewer, w.post
    author = posts.author[post].astype(np.int64)
    reaction = behavior.reactions(beh, w.fraction, w.quality, w.polish, w.like_proof, w.follow_proof, rng)
    followed = new_follows(platform, viewer, author, reaction.follow_intent)
    purchased = commerce_.purchases(reactors.commerce, platform, viewer, post, w.channel, w.fraction, w.affinity,
                                    now, rng)
    sounds_.sound_actions(reactors.sounds, platform, viewer, post, w.channel, w.fraction, now, rng)
    completed = w.fraction >= beh.complete_at
    cols = posts.cols
    topic = posts.topic[post].astype(np.int64)
    engaged = reaction.liked | reaction.commented | reaction.shared
    inspiration_.count_engagements(reactors.inspiration, viewer[engaged], topic[engaged])
    group = channel_group(w.channel)
    counted = (("views_core", platform.users.main_topic[viewer] == topic),
               ("views_first_day", now - posts.created_at[post] < DAY),
               ("likes", reaction.liked), ("comments", reaction.commented), ("shares", reaction.shared),
               ("follows", followed), ("purchases", purchased), ("completions", completed),
               *((name, group == g) for g, name in enumerate(VIEWS_BY_GROUP)))
    _count_impressions(post, tuple(mask for _, mask in counted), tuple(cols[name] for name, _ in counted),
                       cols["views"], cols["watch_s"], w.fraction * posts.length_s[post])
    shared = reaction.shared
    st.reshares.push(viewer[shared], post[shared])
    st.seen.add(viewer, post)
    return Feedback(user=viewer, post=post, channel=w.channel, position=w.position, watch_fraction=w.fraction,
                    completed=completed, liked=reaction.liked, commented=reaction.commented, shared=reaction.shared,
                    followed=followed, purchased=purchased, shown_likes=w.shown_likes,
                    shown_followers=w.shown_followers)


@numba.njit(cache=True)
def _count_impressions(post: np.ndarray, masks: tuple[np.ndarray, ...], counters: tuple[np.ndarray, ...],
                       views: np.ndarray, watch_s: np.ndarray, watched_s: np.ndarray) -> None:
    """Count a round's impressions (``post``, shape ``(m,)``) into the post counters in one pass:
    a view and ``watched_s`` seconds each, and one in ``counters[c]`` where ``masks[c]`` is set
    (what ``np.add.at`` per counter would do, in the same order)."""
    for i in range(len(post)):
        p = post[i]
        views[p] += 1
        watch_s[p] += watched_s[i]
        for c in range(len(masks)):
            if masks[c][i]:
                counters[c][p] += 1


def new_follows(platform: Platform, viewer: np.ndarray, author: np.ndarray, intent: np.ndarray) -> np.ndarray:
    """Turn follow intents (shape ``(m,)`` each) into follows: not yourself, not twice, once per pair;
    returns which impressions made a follow, shape ``(m,)`` bool."""
    idx = np.flatnonzero(intent & (viewer != author))
    followed = np.zeros(len(viewer), dtype=bool)
    if len(idx) == 0:
        return followed
    st = platform.state
    idx = idx[~st.is_following(viewer[idx], author[idx])]
    _, first = np.unique(viewer[idx] * platform.users.n + author[idx], return_index=True)
    idx = idx[first]
    followed[idx] = True
    st.add_follows(viewer[idx], author[idx])
    return followed
