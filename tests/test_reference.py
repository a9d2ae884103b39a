"""Viewers judge quality against their recent feed: the reference and its anchor."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_experiment

from sim.engine import serving
from sim.model.world import build_world


def test_the_reference_is_an_exponential_mean_of_the_appeal_watched() -> None:
    reference = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    users = np.array([0, 2])  # user 1 watches nothing this round
    served = np.array([2, 1])
    appeal = np.array([0.5, 1.5, 6.0])  # user 0 watched 0.5 and 1.5, user 2 watched 6.0
    row = np.array([0, 0, 1])
    serving.update_reference(reference, users, served, appeal, row, memory=4.0)
    keep2, keep1 = 0.75**2, 0.75
    assert reference[0] == pytest.approx(1.0 * keep2 + 1.0 * (1 - keep2))
    assert reference[1] == 2.0
    assert reference[2] == pytest.approx(3.0 * keep1 + 6.0 * (1 - keep1))


def test_every_reference_starts_at_the_appeal_of_an_average_post_of_the_users_interests() -> None:
    exp = make_experiment({"world": {"users": 500}})
    world = build_world(exp, np.random.default_rng(0))
    state = serving.new_serving(exp, world.users)
    interest = world.users.interest.astype(np.float64)
    expected = exp.behavior.watch_affinity * (interest * world.users.affinity).sum(axis=1) / interest.sum(axis=1)
    np.testing.assert_allclose(state.anchor, expected, rtol=1e-6)
    assert np.array_equal(state.reference, state.anchor) and state.reference is not state.anchor


def test_a_shown_count_reference_starts_at_the_first_counts_seen() -> None:
    reference = np.array([np.nan, np.nan, 2.0], dtype=np.float32)
    users = np.array([0, 2])
    served = np.array([2, 1])
    shown_log = np.array([1.0, 3.0, 6.0])  # user 0 saw log-counts 1 and 3, user 2 saw 6
    serving.update_reference(reference, users, served, shown_log, np.array([0, 0, 1]), memory=4.0)
    assert reference[0] == pytest.approx(2.0)  # no reference yet: the round's mean
    assert np.isnan(reference[1])  # watched nothing
    assert reference[2] == pytest.approx(2.0 * 0.75 + 6.0 * 0.25)


def test_viewers_read_counts_against_the_counts_their_feed_showed() -> None:
    # After a run every viewer who watched has a finite reference for likes and followers, inside the
    # range of log1p counts there are; those who never watched have none.
    from conftest import run_simulation

    sim = run_simulation(make_experiment({"horizon_days": 0.05}), "content")
    shown = sim.serving.shown
    watched = np.isfinite(shown[0])
    assert watched.any() and np.array_equal(watched, np.isfinite(shown[1]))
    top_likes = np.log1p(sim.posts.likes.max() + sim.posts.bought_likes.max())
    assert (shown[0, watched] >= 0).all() and (shown[0, watched] <= top_likes + 1e-5).all()
    assert (shown[1, watched] >= 0).all()
