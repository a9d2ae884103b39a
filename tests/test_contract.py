"""The ranker contract, checked for every registered ranker on a small running state."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_experiment, run_simulation

from sim.engine import Simulation
from sim.rankers import CHANNEL_NAMES, RANKERS

K = 12


@pytest.fixture(scope="module")
def contract_experiment():  # type: ignore[no-untyped-def]
    return make_experiment({"world": {"users": 1500}, "horizon_days": 0.1, "warmup_hours": 2.0,
                            "rankers": [{"name": name} for name in sorted(RANKERS)],
                            "recording": {"impression_sample_rate": 1.0}})


@pytest.fixture(scope="module", params=sorted(RANKERS))
def finished(request, contract_experiment) -> Simulation:  # type: ignore[no-untyped-def]
    """A simulation of one ranker run to its horizon: a state with posts, views and follows."""
    return run_simulation(contract_experiment, request.param)


def users_to_rank(sim: Simulation) -> np.ndarray:
    """The heaviest viewers (most seen posts) and a spread of everyone else, shape (n,)."""
    imp = sim.recorder.tables["impressions"]
    viewers = imp.column("user_id").to_numpy()
    heavy = np.argsort(-np.bincount(viewers, minlength=sim.users.n), kind="stable")[:150]
    return np.unique(np.concatenate([heavy, np.arange(0, sim.users.n, 7)])).astype(np.int64)


def test_ranker_is_registered_under_its_name() -> None:
    for name, cls in RANKERS.items():
        assert cls.name == name


def test_slate_honours_the_contract(finished: Simulation) -> None:
    sim = finished
    st = sim.state
    users = users_to_rank(sim)
    seen_bits = st.seen.bits.copy()
    views = st.posts.views.copy()
    slate = sim.ranker.rank(users, sim.env.now, K)

    ids, channel = slate.post_ids, slate.channel
    assert ids.dtype == np.int64 and ids.shape == (len(users), K)
    assert channel.dtype == np.int8 and channel.shape == (len(users), K)
    valid = ids >= 0
    assert (ids >= -1).all()
    assert (valid == np.logical_and.accumulate(valid, axis=1)).all(), "-1 only as trailing padding"
    assert (ids < len(st.posts)).all()
    assert valid.sum() > len(users), "slates are nearly empty: the contract checks almost nothing"

    row, col = np.nonzero(valid)
    post, user = ids[row, col], users[row]
    assert set(np.unique(channel[row, col]).tolist()) <= set(CHANNEL_NAMES)
    pairs = user * len(st.posts) + post
    assert len(np.unique(pairs)) == len(pairs), "a post repeated within a slate"
    assert (st.posts.author[post] != user).all(), "a user was shown their own post"
    assert not st.seen.contains(user, post).any(), "a post the user may have seen"
    imp = sim.recorder.tables["impressions"]
    recorded = set(zip(imp.column("user_id").to_pylist(), imp.column("post_id").to_pylist(), strict=True))
    assert not {(int(u), int(p)) for u, p in zip(user, post, strict=True)} & recorded, "a post the user has seen"

    # rank() reads the state; it does not write to it.
    assert np.array_equal(st.seen.bits, seen_bits)
    assert np.array_equal(st.posts.views, views)


def test_slate_for_a_single_user_matches_the_contract(finished: Simulation) -> None:
    sim = finished
    slate = sim.ranker.rank(np.array([int(users_to_rank(sim)[0])]), sim.env.now, 3)
    assert slate.post_ids.shape == (1, 3) and slate.post_ids.dtype == np.int64
    assert slate.channel.shape == (1, 3) and slate.channel.dtype == np.int8
