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
