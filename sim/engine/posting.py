"""Posting: background posts at each creator's rate, planted accounts' styles and topic mixes,
scenario posts, and adding any new posts to the platform."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import DAY, Experiment, PostEvent
from sim.engine import listening as listening_
from sim.engine import sounds as sounds_
from sim.engine.listening import Listening
from sim.engine.platform import Platform, hour_factor
from sim.engine.sounds import SoundState
from sim.model.world import NO_ID, World, draw_posts, quality_at_quantile


@dataclass
class Posting:
    """Who posts how often.

    Attributes
    ----------
    posting_cum : np.ndarray
        Shape ``(n_users,)``: cumulative posting rate (posts/s) from t = 0.
    warmup_posting_cum : np.ndarray
        Shape ``(n_users,)``: the same during the warm-up, when planted accounts post nothing (so
        each has exactly its planted followers when the scenario starts).
    styles : dict
        Planted account id -> ``(authenticity, quality, product)`` of its background posts
        (authenticity < 0, quality None, product NO_ID: drawn as anyone's).
    """

    posting_cum: np.ndarray
    warmup_posting_cum: np.ndarray
    styles: dict[int, tuple[float, float | None, int]]


def new_posting(exp: Experiment, world: World, planted: np.ndarray) -> Posting:
    """The posting rates of ``world``'s users; ``planted`` (shape ``(n_users,)`` bool) marks the
    planted accounts."""
    rate = world.users.posting_rate
    return Posting(posting_cum=np.cumsum(rate.astype(np.float64) / DAY),
                   warmup_posting_cum=np.cumsum(np.where(planted, 0.0, rate) / DAY),
                   styles=account_styles(exp, world))


def account_styles(exp: Experiment, world: World) -> dict[int, tuple[float, float | None, int]]:
    """Planted accounts whose background posts have a set authenticity, quality or product."""
    products = world.products.names
    styles = {}
    for spec in exp.world.accounts:
        if spec.authenticity >= 0 or spec.quality_quantile >= 0 or spec.product:
            quality = quality_at_quantile(spec.quality_quantile) if spec.quality_quantile >= 0 else None
            product = products.index(spec.product) if spec.product else NO_ID
            styles[world.accounts[spec.name]] = (spec.authenticity, quality, product)
    return styles


def add_posts(platform: Platform, listening: Listening, columns: dict[str, np.ndarray], now: float) -> np.ndarray:
    """Append posts (``columns``: one array of shape ``(m,)`` per post column) made at ``now``, push
    them to their author's and topic's rings and queue listening creators' ones for reading;
    returns their ids, shape ``(m,)``."""
    state = platform.state
    authors = np.asarray(columns["author"], dtype=np.int64)
    ids = platform.posts.append(**columns, created_at=np.full(len(authors), now),
                                author_followers_at_post=state.follower_counts[authors])
    state.author_posts.push(authors, ids)
    state.topic_posts.push(np.asarray(columns["topic"], dtype=np.int64), ids)
    listening_.note_posts(listening, authors, ids)
    return ids


def publish(platform: Platform, listening: Listening, sounds: SoundState, columns: dict[str, np.ndarray],
            with_sound: np.ndarray, now: float) -> np.ndarray:
    """Add posts and release a new sound from each of those ``with_sound`` (shape ``(m,)`` bool)."""
    ids = add_posts(platform, listening, columns, now)
    sounds_.release_sounds(sounds, platform.posts, ids[with_sound], now)
    return ids


def post_background(posting: Posting, platform: Platform, listening: Listening, sounds: SoundState, now: float,
                    rng: np.random.Generator) -> None:
    """This tick's background posts: creators post at their heavy-tailed rates, planted accounts in
    their style and topic mix.  ``rng`` is the posting stream, common to the rankers of a replicate."""
    exp = platform.exp
    cum = posting.posting_cum if now >= 0 else posting.warmup_posting_cum
    total = cum[-1]
    if total <= 0:
        return
    m = rng.poisson(total * platform.tick_s * hour_factor(platform, now))
    authors = np.searchsorted(cum, rng.random(m) * total, side="right")
    columns = draw_posts(platform.users, authors, exp.world, rng)
    with_sound = rng.random(m) < exp.world.sound_share
    _apply_styles(posting, columns, authors)
    _mix_topics_and_formats(platform, listening, columns, authors, now, rng)
    if exp.behavior.derivative_at_posting:
        # No draw is made here, so the posting stream stays common to the rankers of a replicate.
        parents = sounds_.use_sounds_in_mind(sounds, authors)
        sounds_.derive(sounds, platform, columns, parents, keep_topic=True)
        with_sound &= parents < 0
    publish(platform, listening, sounds, columns, with_sound, now)


def _apply_styles(posting: Posting, columns: dict[str, np.ndarray], authors: np.ndarray) -> None:
    """Give planted accounts' posts their set authenticity, quality and product."""
    for uid, (authenticity, quality, product) in posting.styles.items():
        mine = authors == uid
        if authenticity >= 0:
            columns["authenticity"][mine] = authenticity
        if quality is not None:
            columns["quality"][mine] = quality
        if product >= 0:
            columns["product"] = np.where(mine, product, columns.get("product", NO_ID))


def _mix_topics_and_formats(platform: Platform, listening: Listening, columns: dict[str, np.ndarray],
                            authors: np.ndarray, now: float, rng: np.random.Generator) -> None:
    """Posts of accounts with a topic mix draw their topic (and format) from it, and add the fit of
    each to their quality; a listening account first reads what its posts earned."""
    world = platform.world
    for uid in listening.topic_mix:
        mine = np.flatnonzero(authors == uid)
        if len(mine) == 0:
            continue
        if listening.listen_rate[uid] > 0:
            listening_.listen(listening, platform.posts, uid, now)
        topic = choose(listening.topic_mix[uid], rng, len(mine))
        columns["topic"][mine] = topic
        columns["quality"][mine] += world.topic_fit[uid][topic]
        if uid in listening.format_mix:
            form = choose(listening.format_mix[uid], rng, len(mine))
            columns.setdefault("format", np.full(len(authors), NO_ID, dtype=np.int16))[mine] = form
            columns["quality"][mine] += world.format_fit[uid][form]


def choose(mix: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` draws of an index with probabilities proportional to ``mix`` (shape ``(n_options,)``)."""
    cum = np.cumsum(mix / mix.sum())
    return np.searchsorted(cum, rng.random(m), side="right").clip(0, len(cum) - 1)


def post_scenario(platform: Platform, listening: Listening, sounds: SoundState, index: int, event: PostEvent,
                  now: float) -> int:
    """A scheduled scenario post (the ``index``-th event): a given account posts a given post; the
    first post with a named sound releases it.  Returns the post's id."""
    world, posts = platform.world, platform.posts
    author = world.accounts[event.account]
    topic = world.topics.index(event.topic) if event.topic else int(platform.users.main_topic[author])
    product = world.products.names.index(event.product) if event.product else NO_ID
    columns = {
        "author": np.array([author]), "topic": np.array([topic]),
        "quality": np.array([quality_at_quantile(event.quality_quantile)]),
        "authenticity": np.array([event.authenticity]), "length_s": np.array([event.length_s]),
        "product": np.array([product]), "event": np.array([index]),
    }  # fmt: skip
    (post,) = add_posts(platform, listening, columns, now)
    posts.cols["bought_likes"][post] += event.bought_likes
    if event.sound in sounds.sounds.names:
        posts.cols["sound"][post] = sounds.sounds.names[event.sound]
    elif event.sound:
        (sound,) = sounds_.release_sounds(sounds, posts, np.array([post]), now)
        if event.appeal_quantile >= 0:  # a song may be better (or worse) than the video it came in
            sounds.sounds.cols["appeal"][sound] = quality_at_quantile(event.appeal_quantile)
        sounds_.name_sound(sounds, event.sound, int(sound))
    return int(post)
