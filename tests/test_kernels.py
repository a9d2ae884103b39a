"""The compiled shortcuts give exactly what the plain numpy they replace gives: a retrieval draw
from its guide table, a sound's uses from the sound index, a round's counters in one pass."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.serving import _count_impressions
from sim.engine.sounds import SoundUses
from sim.model.world import Posts
from sim.rankers.content import RETRIEVAL_GUIDE, _build_guide, _invert

weight_rows = st.lists(st.sampled_from([0.0, 1e-12, 1e-3, 1.0, 7.0, 1e6]), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(weight_rows, min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1))
def test_guide_table_draw_is_binary_search(rows: list[list[float]], seed: int) -> None:
    width = max(len(r) for r in rows)
    weights = np.zeros((len(rows), width))
    for t, r in enumerate(rows):
        weights[t, : len(r)] = r
    cum = np.cumsum(weights, axis=1)
    guide, guide_at = np.empty((len(rows), RETRIEVAL_GUIDE), np.int64), np.empty((len(rows), RETRIEVAL_GUIDE))
    _build_guide(cum, guide, guide_at)
    u = np.concatenate([np.random.default_rng(seed).random(500), [0.0, np.nextafter(1.0, 0.0)],
                        np.arange(RETRIEVAL_GUIDE + 1) / RETRIEVAL_GUIDE * np.nextafter(1.0, 0.0)])
    for t in range(len(rows)):
        if cum[t, -1] <= 0:
            continue  # a topic without weight is never drawn from
        expected = np.minimum(np.searchsorted(cum[t], u * cum[t, -1], side="right"), width - 1)
        got = [_invert(cum[t], guide[t], guide_at[t], x) for x in u]
        assert got == expected.tolist()


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.integers(-1, 6), max_size=700), min_size=1, max_size=6),
       asks=st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True), min_size=6, max_size=6))
def test_sound_index_finds_every_use_in_id_order(batches: list[list[int]], asks: list[list[int]]) -> None:
    # Posts arrive in batches (some larger than the index's unsorted tail); after each, ask for some sounds.
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
