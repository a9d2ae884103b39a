"""Sounds and their derivatives: releasing a sound, duets and 'use this sound' posts, sound pages,
and the listeners of named (scenario) sounds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from sim.engine.platform import Platform
from sim.model import behavior
from sim.model.world import NO_ID, Posts, Sounds, draw_posts
from sim.rankers.base import SOUND, Slate, duplicate_in_row, first_k_valid, ranges

SOUND_PAGE_WIDTH = 16  # posts of a sound considered for its page: the original, then the most viewed
#: Distinct sounds a user remembers having been moved by since its last post (TikTok's "add to
#: favourites"); a sound heard again while remembered is not a new choice.
FAVOURITES = 16


class SoundUses:
    """The posts that carry each sound, for sound pages, without scanning every post on each call.

    A post's sound is set when it is published and never changes, so posts ``[0, indexed)`` are
    kept sorted by (sound, post id) and only the posts published since are scanned; they join the
    sorted part once there are more than ``TAIL`` of them."""

    TAIL = 1024

    def __init__(self) -> None:
        self.indexed = 0
        self.post = np.zeros(0, dtype=np.int64)  # posts with a sound, by (sound, id)
        self.sound = np.zeros(0, dtype=np.int64)  # their sounds

    def of(self, posts: Posts, wanted: np.ndarray) -> np.ndarray:
        """Ids of the posts whose sound is one of ``wanted`` (sorted, distinct sound ids), each
        sound's posts in ascending id order."""
        sound = posts.sound
        if len(sound) - self.indexed > self.TAIL:
            carries = np.flatnonzero(sound >= 0)
            order = np.argsort(sound[carries], kind="stable")
            self.post, self.sound = carries[order], sound[carries][order].astype(np.int64)
            self.indexed = len(sound)
        start = np.searchsorted(self.sound, wanted)
        count = np.searchsorted(self.sound, wanted, side="right") - start
        tail = self.indexed + np.flatnonzero(np.isin(sound[self.indexed :], wanted))
        return np.concatenate([self.post[ranges(start, count)], tail])


@dataclass
class SoundState:
    """Sounds and what users mean to do with them.

    Attributes
    ----------
    sounds : Sounds
        One row per sound.
    tapped : np.ndarray
        Shape ``(n_users,)``: the sound whose page each user opens next (NO_ID: none).
    in_mind : np.ndarray
        Shape ``(n_users,)``: with ``derivative_at_posting``, the post whose sound each user means to
        use next (NO_ID: none): one drawn from the distinct sounds that moved the user since its
        last post, uniformly up to ``FAVOURITES`` of them (a reservoir sample, :func:`keep_in_mind`).
    moved_by : np.ndarray
        Shape ``(n_users, FAVOURITES)`` int32: the distinct sounds that moved each user since its
        last post (its favourites), in a ring that forgets the earliest added past its width, to
        tell a new sound from one heard again.
    n_moved : np.ndarray
        Shape ``(n_users,)`` int32: how many distinct sounds moved each user since its last post.
    queue : list of dict
        Derivative posts waiting for their delay, each ``{"due": (m,) s, "author": (m,), "parent": (m,)}``.
    listened : np.ndarray
        Shape ``(n_named_sounds, n_users)`` bool: who has heard each named sound.
    listeners_via_artist : np.ndarray
        Shape ``(n_named_sounds,)``: listeners who first heard it in the artist's own post.
    uses : SoundUses
        Which posts carry each sound, for sound pages.
    """

    tapped: np.ndarray
    in_mind: np.ndarray
    moved_by: np.ndarray
    n_moved: np.ndarray
    listened: np.ndarray
    sounds: Sounds = field(default_factory=Sounds)
    queue: list[dict[str, np.ndarray]] = field(default_factory=list)
    listeners_via_artist: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    uses: SoundUses = field(default_factory=SoundUses)


def new_sound_state(n_users: int) -> SoundState:
    """No sounds yet, for ``n_users`` users."""
    return SoundState(tapped=np.full(n_users, NO_ID, dtype=np.int64), in_mind=np.full(n_users, NO_ID, dtype=np.int64),
                      moved_by=np.full((n_users, FAVOURITES), NO_ID, dtype=np.int32),
                      n_moved=np.zeros(n_users, dtype=np.int32), listened=np.zeros((0, n_users), dtype=bool))


def release_sounds(state: SoundState, posts: Posts, post_ids: np.ndarray, now: float) -> np.ndarray:
    """Make each of ``post_ids`` the original of a new sound by its author; returns the sound ids."""
    ids = state.sounds.append(origin=post_ids, artist=posts.author[post_ids], appeal=posts.quality[post_ids],
                              created_at=np.full(len(post_ids), now))
    posts.cols["sound"][post_ids] = ids
    return ids


def name_sound(state: SoundState, name: str, sound: int) -> None:
    """Count the listeners of ``sound`` from now on under ``name``."""
    state.sounds.names[name] = sound
    state.listened = np.vstack([state.listened, np.zeros((1, state.listened.shape[1]), dtype=bool)])
    state.listeners_via_artist = np.append(state.listeners_via_artist, 0)


def use_sounds_in_mind(state: SoundState, authors: np.ndarray) -> np.ndarray:
    """The parent each of these ordinary posts (in draw order) derives from: an author's first
    post uses the sound it has in mind, which it then forgets; NO_ID elsewhere."""
    parents = np.full(len(authors), NO_ID, dtype=np.int64)
    _, first = np.unique(authors, return_index=True)
    parents[first] = state.in_mind[authors[first]]
    state.in_mind[authors[first]] = NO_ID
    state.n_moved[authors[first]] = 0
    return parents


@numba.njit(cache=True)
def keep_in_mind(viewer: np.ndarray, post: np.ndarray, sound: np.ndarray, u: np.ndarray, moved_by: np.ndarray,
                 n_moved: np.ndarray, in_mind: np.ndarray) -> None:
    """Viewers moved to use a sound, in order (shape ``(m,)`` each; ``u`` uniform draws): a sound
    not among the viewer's remembered ones is remembered (the earliest added forgotten past
    ``moved_by.shape[1]``) and becomes the one in mind with probability 1 / (sounds remembered so
    far, counting the forgotten).  Up to the width, the sound in mind at posting is uniform over
    the distinct sounds that moved the viewer since its last post, however often each was heard.
    Past it, a forgotten sound heard again counts as new: a sound heard throughout keeps about a
    1 / width chance however many others there are."""
    width = moved_by.shape[1]
    for i in range(len(viewer)):
        v, s = viewer[i], sound[i]
        known = False
        for j in range(min(n_moved[v], width)):
            if moved_by[v, j] == s:
                known = True
                break
        if known:
            continue
        moved_by[v, n_moved[v] % width] = s
        n_moved[v] += 1
        if u[i] * n_moved[v] < 1.0:
            in_mind[v] = post[i]


def derive(state: SoundState, platform: Platform, columns: dict[str, np.ndarray], parents: np.ndarray,
           keep_topic: bool = False) -> None:
    """Make the posts in ``columns`` with a parent (``parents >= 0``) derivatives of it: its sound,
    one step deeper, quality partly from the sound's appeal, and its topic unless ``keep_topic``
    (a sound chosen for a post of the creator's own stays in the creator's topic); each parent
    counts its new derivatives."""
    posts, made = platform.posts, parents >= 0
    sound = np.full(len(parents), NO_ID, dtype=np.int64)
    sound[made] = posts.sound[parents[made]]
    assert (sound[made] >= 0).all(), "a derivative's parent carries a sound"
    depth = np.zeros(len(parents), dtype=np.int16)
    depth[made] = posts.depth[parents[made]] + 1
    carry = platform.exp.behavior.sound_carry
    quality = np.asarray(columns["quality"], dtype=np.float64).copy()
    quality[made] = (1 - carry) * quality[made] + carry * state.sounds.appeal[sound[made]]
    topic = np.asarray(columns["topic"]).copy()
    if not keep_topic:
        topic[made] = posts.topic[parents[made]]
    columns.update(topic=topic, sound=sound, parent=parents, depth=depth, quality=quality)
    np.add.at(posts.cols["derivatives"], parents[made], 1)


def due_derivatives(state: SoundState, platform: Platform, now: float,
                    rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    """The columns of the queued derivatives (duets, 'use this sound') whose delay is over by the end
    of this tick, taken off the queue; None when there are none.  ``rng`` is the behaviour stream:
    derivatives answer what was watched, so they differ by ranker, while the posting stream (every
    other post) stays common to the rankers of a replicate."""
    if not state.queue:
        return None
    queue = {k: np.concatenate([d[k] for d in state.queue]) for k in state.queue[0]}
    due = queue["due"] < now + platform.tick_s
    state.queue = [{k: v[~due] for k, v in queue.items()}] if (~due).any() else []
    if not due.any():
        return None
    authors, parents = queue["author"][due], queue["parent"][due]
    if now < 0:  # planted accounts start posting at t = 0
        keep = ~platform.planted[authors]
        authors, parents = authors[keep], parents[keep]
    columns = draw_posts(platform.users, authors, platform.exp.world, rng)
    derive(state, platform, columns, parents)
    return columns


def open_sound_pages(state: SoundState, platform: Platform, users: np.ndarray, slate: Slate) -> Slate:
    """Users who tapped a sound watch its page first: the original, then its most viewed uses
    (channel ``SOUND``), ahead of what the ranker chose.  Works the same under every ranker.

    ``slate`` has shape ``(len(users), k)``; its rows are rewritten in place and it is returned."""
    sound = state.tapped[users]
    rows = np.flatnonzero(sound >= 0)
    if len(rows) == 0:
        return slate
    state.tapped[users[rows]] = NO_ID
    page = sound_pages(state, platform.posts, sound[rows])
    seen = platform.state.seen.contains(users[rows][:, None], np.maximum(page, 0))
    own = platform.posts.author[np.maximum(page, 0)] == users[rows][:, None]
    page[seen | own] = NO_ID  # a page lists the user's own uses of the sound, but does not show them
    n_page = platform.exp.behavior.sound_page_posts
    opened = first_k_valid(page, np.full(page.shape, SOUND, np.int8), page >= 0, n_page)
    cand = np.concatenate([opened.post_ids, slate.post_ids[rows]], axis=1)
    channel = np.concatenate([opened.channel, slate.channel[rows]], axis=1)
    valid = (cand >= 0) & ~duplicate_in_row(cand)
    valid[:, n_page:] &= np.logical_and.accumulate(slate.post_ids[rows] >= 0, axis=1)
    merged = first_k_valid(cand, channel, valid, slate.post_ids.shape[1])
    slate.post_ids[rows] = merged.post_ids
    slate.channel[rows] = merged.channel
    return slate


def sound_pages(state: SoundState, posts: Posts, sounds: np.ndarray) -> np.ndarray:
    """Each sound's page, shape ``(len(sounds), SOUND_PAGE_WIDTH)``: its original post, then its
    uses by views (most first, the earlier post first among equals); padded with NO_ID."""
    wanted = np.unique(sounds)
    uses = state.uses.of(posts, wanted)
    sound = posts.sound[uses].astype(np.int64)
    # One sort key per use: the original first, then views descending, then post id ascending.
    key = np.where(uses == state.sounds.origin[sound], -1,
                   ((np.iinfo(np.int32).max - posts.views[uses].astype(np.int64)) << 32) | uses)
    pages = np.full((len(wanted), SOUND_PAGE_WIDTH), NO_ID, dtype=np.int64)
    _top_uses(np.searchsorted(wanted, sound), key, uses, np.full(pages.shape, np.iinfo(np.int64).max), pages)
    return pages[np.searchsorted(wanted, sounds)]


@numba.njit(cache=True)
def _top_uses(row: np.ndarray, key: np.ndarray, uses: np.ndarray, top_key: np.ndarray, top: np.ndarray) -> None:
    """Keep, per row of ``top`` (shape ``(n_sounds, width)``), the uses with the smallest keys in
    ascending key order: ``uses[i]`` (key ``key[i]``, distinct) belongs to row ``row[i]``.  An
    insertion into a short sorted row: most uses of a popular sound fail the first comparison."""
    width = top.shape[1]
    for i in range(len(uses)):
        r, k = row[i], key[i]
        if k >= top_key[r, width - 1]:
            continue
        j = width - 1
        while j > 0 and top_key[r, j - 1] > k:
            top_key[r, j] = top_key[r, j - 1]
            top[r, j] = top[r, j - 1]
            j -= 1
        top_key[r, j] = k
        top[r, j] = uses[i]


def sound_actions(state: SoundState, platform: Platform, viewer: np.ndarray, post: np.ndarray,
                  channel: np.ndarray, fraction: np.ndarray, now: float, rng: np.random.Generator) -> None:
    """Viewers of posts with a sound may make a derivative post (queued with a delay, or kept in
    mind for their next post) or open the sound's page; listeners of named sounds are counted.

    All arrays have shape ``(m,)``, one entry per watched impression; ``fraction`` is the share of
    the post watched."""
    posts = platform.posts
    sound = posts.sound[post].astype(np.int64)
    idx = np.flatnonzero(sound >= 0)
    if len(idx) == 0:
        return
    beh, exp, u = platform.exp.behavior, platform.exp, platform.users
    viewer, post, sound, fraction = viewer[idx], post[idx], sound[idx], fraction[idx]
    appeal = state.sounds.appeal[sound]
    poster = np.log(np.maximum(u.posting_rate[viewer], 1e-9) / max(exp.world.posting_rate_mean, 1e-9))
    z = (beh.derivative_intercept + beh.derivative_watch * fraction + beh.derivative_quality * appeal
         + beh.derivative_poster * poster)
    makes = (rng.random(len(idx)) < behavior.sigmoid(z)) & (viewer != posts.author[post])
    if makes.any() and beh.derivative_at_posting:
        if now < 0:  # planted accounts start at t = 0 with nothing in mind
            makes &= ~platform.planted[viewer]
        keep_in_mind(viewer[makes], post[makes], sound[makes], rng.random(int(makes.sum())), state.moved_by,
                     state.n_moved, state.in_mind)
    elif makes.any():
        delay = rng.exponential(beh.derivative_delay_hours * 3600.0, int(makes.sum()))
        state.queue.append({"due": now + delay, "author": viewer[makes], "parent": post[makes]})
    z = beh.sound_tap_intercept + beh.sound_tap_watch * fraction + beh.sound_tap_quality * appeal
    taps = (rng.random(len(idx)) < behavior.sigmoid(z)) & (channel[idx] != SOUND)
    state.tapped[viewer[taps]] = sound[taps]
    if len(state.sounds.names):
        count_listeners(state, posts, viewer, post, sound)


def count_listeners(state: SoundState, posts: Posts, viewer: np.ndarray, post: np.ndarray,
                    sound: np.ndarray) -> None:
    """Mark first hearings of named sounds, shape ``(m,)`` each, and count those through the artist's post."""
    named = np.array(sorted(state.sounds.names.values()))
    row = np.searchsorted(named, sound).clip(0, len(named) - 1)
    mine = named[row] == sound
    row, viewer, post = row[mine], viewer[mine], post[mine]
    new = ~state.listened[row, viewer]
    row, viewer, post = row[new], viewer[new], post[new]
    _, first = np.unique(row * state.listened.shape[1] + viewer, return_index=True)
    row, viewer, post = row[first], viewer[first], post[first]
    state.listened[row, viewer] = True
    via_artist = posts.author[post] == state.sounds.artist[named[row]]
    np.add.at(state.listeners_via_artist, row[via_artist], 1)
