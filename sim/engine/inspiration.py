"""Experts breed experts: users who engaged enough with a topic may start posting in it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import DAY
from sim.engine.platform import Platform, hour_factor
from sim.model.world import NO_ID, draw_posts

INSPIRE_HOURS = 6.0  # how often users who engaged enough are given the chance to start posting


@dataclass
class Inspiration:
    """Engagement per topic and who was inspired by it.

    Attributes
    ----------
    topic_engagement : np.ndarray
        Shape ``(n_users, n_topics)`` uint16: likes, comments and shares each user gave each topic.
    inspired_topic : np.ndarray
        Shape ``(n_users,)`` int16: the topic each user started posting in (NO_ID: none).
    inspired_at : np.ndarray
        Shape ``(n_users,)``: when (s) they started; NaN for the others.
    inspired_cum : np.ndarray
        Shape ``(n_users,)``: cumulative posting rate (posts/s) of the inspired users.
    """

    topic_engagement: np.ndarray
    inspired_topic: np.ndarray
    inspired_at: np.ndarray
    inspired_cum: np.ndarray


def new_inspiration(n_users: int, n_topics: int) -> Inspiration:
    """Nobody engaged, nobody inspired."""
    return Inspiration(topic_engagement=np.zeros((n_users, n_topics), dtype=np.uint16),
                       inspired_topic=np.full(n_users, NO_ID, dtype=np.int16),
                       inspired_at=np.full(n_users, np.nan), inspired_cum=np.zeros(n_users))


def count_engagements(inspiration: Inspiration, viewer: np.ndarray, topic: np.ndarray) -> None:
    """Add one engagement per (viewer, topic) pair, shape ``(m,)`` each."""
    np.add.at(inspiration.topic_engagement, (viewer, topic), 1)


def inspire(inspiration: Inspiration, platform: Platform, now: float, rng: np.random.Generator) -> None:
    """Users past ``inspire_engagements`` in a topic start posting in it with probability
    ``inspire_rate`` per day (one topic per user: the one they engaged with most)."""
    beh = platform.exp.behavior
    if beh.inspire_rate <= 0:
        return
    eng = inspiration.topic_engagement
    best = eng.argmax(axis=1)
    eligible = np.flatnonzero((eng[np.arange(len(best)), best] >= beh.inspire_engagements)
                              & (inspiration.inspired_topic < 0)
                              & (platform.users.posting_rate < beh.inspired_posting_rate))
    chance = 1.0 - np.exp(-beh.inspire_rate * INSPIRE_HOURS / 24.0)
    chosen = eligible[rng.random(len(eligible)) < chance]
    if len(chosen) == 0:
        return
    inspiration.inspired_topic[chosen] = best[chosen]
    inspiration.inspired_at[chosen] = now
    inspiration.inspired_cum = np.cumsum(np.where(inspiration.inspired_topic >= 0,
                                                  beh.inspired_posting_rate / DAY, 0.0))


def draw_inspired_posts(inspiration: Inspiration, platform: Platform, now: float,
                        rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """This tick's posts of inspired users, in their new topic: their columns and which of them
    release a sound of their own (shape ``(m,)`` bool); None when nobody is inspired.  ``rng`` is the
    behaviour stream: who is inspired depends on what they watched, so the posting stream stays
    common to the rankers."""
    total = inspiration.inspired_cum[-1] if len(inspiration.inspired_cum) else 0.0
    if total <= 0:
        return None
    exp = platform.exp
    m = rng.poisson(total * platform.tick_s * hour_factor(platform, now))
    authors = np.searchsorted(inspiration.inspired_cum, rng.random(m) * total, side="right")
    if now < 0:  # planted accounts start posting at t = 0
        authors = authors[~platform.planted[authors]]
        m = len(authors)
    columns = draw_posts(platform.users, authors, exp.world, rng)
    columns["topic"] = inspiration.inspired_topic[authors].astype(np.int64)
    with_sound = rng.random(m) < exp.world.sound_share
    return columns, with_sound
