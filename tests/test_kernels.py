"""The shortcuts give exactly what the plain numpy they replace gives: a sound's uses from the
sound index, a sound's page from one compiled pass, a round's counters in one pass, the
retrieval candidates and their weights in one pass."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import sounds
from sim.engine.serving import _count_impressions
from sim.engine.sounds import SOUND_PAGE_WIDTH, SoundUses
from sim.model.world import NO_ID, Posts
from sim.rankers import content


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


def _candidates_reference(recent: np.ndarray, climbers: np.ndarray, earned: np.ndarray, merit: np.ndarray,
                          created_at: np.ndarray, n: int, now: float, base: float,
                          half_life_h: float) -> tuple[np.ndarray, np.ndarray]:
    """The retrieval candidates and cumulative weights as whole-array numpy (what
    :func:`sim.rankers.content._candidates` computes in one pass)."""
    recent = np.where((recent < n) & (earned[recent.clip(0, max(n - 1, 0))] == 0), recent, -1)
    candidates = np.concatenate([recent, climbers], axis=1)
    valid = (candidates >= 0) & (candidates < n)
    safe = candidates.clip(0, max(n - 1, 0))
    if not n:
        return candidates, np.zeros(candidates.shape)
    age_h = (now - created_at[safe]) / 3600.0
    log_weight = merit[safe] * np.log(base) - age_h * (np.log(2.0) / half_life_h)
    log_weight = np.where(valid, log_weight, -np.inf)
    top = log_weight.max(axis=1, keepdims=True)
    weight = np.where(valid, np.exp(log_weight - np.where(np.isfinite(top), top, 0.0)), 0.0)
    return candidates, np.cumsum(weight, axis=1)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 60), n_topics=st.integers(1, 4), width=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_retrieval_candidates_in_one_pass_equal_the_array_form(n: int, n_topics: int, width: int,
                                                               seed: int) -> None:
    rng = np.random.default_rng(seed)
    cap = n + 8  # the ranker's per-post arrays are grown ahead of the posts
    recent = rng.integers(-1, n + 3, (n_topics, width)).astype(np.int32)  # ids >= n: posts not yet seen
    climbers = np.where(rng.random((n_topics, width)) < 0.3, -1, rng.integers(0, max(n, 1), (n_topics, width)))
    climbers = climbers.astype(np.int32) if n else np.full((n_topics, width), -1, np.int32)
    earned = np.zeros(cap, np.int8)
    earned[:n] = rng.integers(0, 6, n) * (rng.random(n) < 0.4)
    merit = earned[:n] + rng.random(n)
    created_at = np.sort(rng.uniform(-43_200.0, 400_000.0, n))
    now = float(created_at[-1] + 60.0) if n else 0.0
    want_posts, want_cum = _candidates_reference(recent, climbers, earned, merit, created_at, n, now, 100.0, 24.0)

    posts = np.empty_like(want_posts)
    log_weight = np.empty(want_posts.shape)
    top = np.empty(n_topics)
    content._candidates(recent, climbers, earned, merit, created_at, n, now, float(np.log(100.0)),
                        float(np.log(2.0) / 24.0), posts, log_weight, top)
    cum = np.cumsum(np.exp(log_weight - np.where(np.isfinite(top), top, 0.0)[:, None]), axis=1)
    assert posts.dtype == want_posts.dtype and np.array_equal(posts, want_posts)
    assert np.array_equal(cum, want_cum)  # bit for bit: the draws use the same random stream
