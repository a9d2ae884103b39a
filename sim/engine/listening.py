"""Creators who listen to feedback: planted accounts posting over several topics (and formats)
shift their mixes toward what their audience rewarded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import Experiment
from sim.model.world import Posts, World

LISTEN_AFTER_HOURS = 24.0  # a listening creator reads a post's reception once it is this old
#: What a post earned weighs each reaction by the effort it takes: a like counts 1, then these (x).
COMMENT_WEIGHT = 5.0
SHARE_WEIGHT = 10.0
FOLLOW_WEIGHT = 20.0
#: A mix never quite abandons an option it has: its floor, as a share of the total.
MIX_FLOOR = 1e-3


@dataclass
class Listening:
    """The mixes of planted accounts posting over several topics, and what listening ones have read.

    Attributes
    ----------
    topic_mix : dict
        Account id -> weights over topics, shape ``(n_topics,)`` (0 for topics it does not post in).
    listen_rate : dict
        Account id -> how strongly it follows its audience (0: it does not listen).
    format_mix : dict
        Account id -> weights over formats, shape ``(n_formats,)``, for accounts with a format fit.
    unread : dict
        Listening account id -> its posts not yet read, shape ``(n,)``, in posting order.
    earned_sum : dict
        Listening account id -> summed log-earnings of the posts it has read.
    posts_read : dict
        Listening account id -> how many of its posts it has read.
    """

    topic_mix: dict[int, np.ndarray]
    listen_rate: dict[int, float]
    format_mix: dict[int, np.ndarray]
    unread: dict[int, np.ndarray]
    earned_sum: dict[int, float]
    posts_read: dict[int, int]


def new_listening(exp: Experiment, world: World) -> Listening:
    """Even mixes for the planted accounts with topics, and nothing read yet."""
    topic_mix = {world.accounts[a.name]: np.isin(world.topics, a.topics).astype(np.float64)
                 for a in exp.world.accounts if a.topics}
    listen_rate = {world.accounts[a.name]: a.listen_rate for a in exp.world.accounts if a.topics}
    format_mix = {uid: np.ones(len(exp.world.formats)) for uid in world.format_fit}
    unread = {uid: np.zeros(0, np.int64) for uid, rate in listen_rate.items() if rate > 0}
    return Listening(topic_mix, listen_rate, format_mix, unread, earned_sum=dict.fromkeys(unread, 0.0),
                     posts_read=dict.fromkeys(unread, 0))


def note_posts(listening: Listening, authors: np.ndarray, ids: np.ndarray) -> None:
    """Queue the new posts ``ids`` (shape ``(m,)``, by ``authors``) of listening accounts for reading."""
    for uid in listening.unread:
        mine = ids[authors == uid]
        if len(mine):
            listening.unread[uid] = np.concatenate([listening.unread[uid], mine])


def listen(listening: Listening, posts: Posts, uid: int, now: float) -> None:
    """A creator who listens reads what each of its posts earned once the post is a day old
    (likes, comments, shares and follows, weighted by effort), compares it with what its posts
    earn on average, and shifts its topic mix, and its format mix where it has one, toward the
    topic and format of the posts that did better: each weight times ``exp(listen_rate x the
    post's advantage)``, every post read once (multiplicative weights, as in Hedge).

    What a post earned is counted, not divided by its views: a creator sees what its audience
    gave, and under a ranker that widens the audience of a well-received post that is more.
    It reads at its next post after one turns a day old, every post it made (scenario posts
    included) exactly once."""
    unread = listening.unread[uid]
    due = posts.created_at[unread] <= now - LISTEN_AFTER_HOURS * 3600.0
    recent, listening.unread[uid] = unread[due], unread[~due]
    if len(recent) == 0:
        return
    earned = np.log1p(posts.likes[recent] + COMMENT_WEIGHT * posts.comments[recent]
                      + SHARE_WEIGHT * posts.shares[recent] + FOLLOW_WEIGHT * posts.follows[recent])
    listening.earned_sum[uid] += float(earned.sum())
    listening.posts_read[uid] += len(earned)
    advantage = listening.listen_rate[uid] * (earned - listening.earned_sum[uid] / listening.posts_read[uid])
    listening.topic_mix[uid] = shift_mix(listening.topic_mix[uid], posts.topic[recent], advantage)
    if uid in listening.format_mix:
        made = posts.format[recent] >= 0  # its scenario posts and extra derivatives have no format
        listening.format_mix[uid] = shift_mix(listening.format_mix[uid], posts.format[recent][made],
                                              advantage[made])


def shift_mix(mix: np.ndarray, choice: np.ndarray, advantage: np.ndarray) -> np.ndarray:
    """One mix (topics or formats), shape ``(n_options,)``, after a listening creator has read some
    posts (``choice``: each post's option, ``advantage``: what it earned over the average, both
    ``(n_posts,)``): each option's weight times ``exp(sum of the advantages of the posts made with
    it)``, in logs so that no advantage overflows.  Never quite abandons an option it has (floor
    :data:`MIX_FLOOR` of the total); an option it does not have (weight 0) stays at 0."""
    has = mix > 0
    log_w = np.full(len(mix), -np.inf)
    log_w[has] = np.log(mix[has]) + np.bincount(choice.astype(np.int64), weights=advantage,
                                                minlength=len(mix))[has]
    mix = np.exp(log_w - log_w[has].max())
    mix = mix / mix.sum()
    return np.where(has, np.maximum(mix, MIX_FLOOR), 0.0)
