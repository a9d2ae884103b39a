"""The shortcuts give exactly what the plain numpy they replace gives: a sound's uses from the
sound index, a sound's page from one compiled pass, a round's counters in one pass."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import sounds
from sim.engine.serving import _count_impressions
from sim.engine.sounds import SOUND_PAGE_WIDTH, SoundUses
from sim.model.world import NO_ID, Posts


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.integers(-1, 6), max_size=700), min_size=1, max_size=6),
       asks=st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True), min_size=6, max_size=6))
def test_sound_index_finds_every_use_in_id_order(batches: list[list[int]], asks: list[list[int]]) -> None:
    # Posts arrive in batches (together often more than the index's unsorted tail, so it is rebuilt);
    # after each batch, ask for some sounds.
    posts, uses = Posts(), SoundUses()
    for batch, ask in zip(batches, asks, strict=False):
        ids = posts.append(sound=np.array(batch, dtype=np.int32)) if batch else np.zeros(0, np.int64)
        assert len(ids) == len(batch)
        wanted = np.array(sorted(ask), dtype=np.int64)
        got = uses.of(posts, wanted)
        expected = np.flatnonzero(np.isin(posts.sound, wanted))
        # Each sound's posts in ascending id order (a stable sort by sound then gives the full order).
        assert np.array_equal(np.sort(got), expected)
        for s in wanted:
            mine = got[posts.sound[got] == s]
            assert np.array_equal(mine, np.sort(mine))


def test_counters_in_one_pass_equal_add_at() -> None:
    rng = np.random.default_rng(5)
    n, m = 50, 2_000
    post = rng.integers(0, n, m)
    masks = tuple(rng.random(m) < p for p in (0.1, 0.5, 0.9))
    counters = tuple(np.zeros(n, np.int32) for _ in masks)
    views, watch_s = np.zeros(n, np.int32), np.zeros(n)
    watched = rng.random(m) * 30.0
    _count_impressions(post, masks, counters, views, watch_s, watched)
    ref_views, ref_watch = np.zeros(n, np.int32), np.zeros(n)
    np.add.at(ref_views, post, 1)
    np.add.at(ref_watch, post, watched)
    assert np.array_equal(views, ref_views)
    assert np.array_equal(watch_s, ref_watch)  # same order of float additions: equal, not close
    for mask, counter in zip(masks, counters, strict=True):
        ref = np.zeros(n, np.int32)
        np.add.at(ref, post[mask], 1)
        assert np.array_equal(counter, ref)


@settings(max_examples=60, deadline=None)
@given(n_posts=st.integers(1, 400), n_sounds=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_sound_page_is_the_original_then_uses_by_views(n_posts: int, n_sounds: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    state = sounds.new_sound_state(1)
    posts = Posts()
    sound = np.where(rng.random(n_posts) < 0.8, rng.integers(0, n_sounds, n_posts), NO_ID).astype(np.int32)
    posts.append(sound=sound)
    posts.cols["views"][:n_posts] = rng.integers(0, 5, n_posts)  # small counts: many ties
    origin = np.array([np.flatnonzero(sound == s)[0] if (sound == s).any() else 0 for s in range(n_sounds)])
    state.sounds.append(origin=origin, artist=np.zeros(n_sounds, np.int64), appeal=np.zeros(n_sounds),
                        created_at=np.zeros(n_sounds))
    asked = rng.integers(0, n_sounds, 5)
    pages = sounds.sound_pages(state, posts, asked)
    for row, s in zip(pages, asked, strict=True):
        mine = np.flatnonzero(sound == s)  # ascending id
        order = sorted(mine, key=lambda p: (p != origin[s], -int(posts.views[p]), p))[:SOUND_PAGE_WIDTH]
        assert row.tolist() == [*order, *[NO_ID] * (SOUND_PAGE_WIDTH - len(order))]
