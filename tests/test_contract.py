"""The ranker contract, checked for every registered ranker on a small running state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_experiment, run_simulation

from sim.engine import Simulation
from sim.rankers import CHANNEL_NAMES, RANKERS, Ranker
from sim.rankers.contract import check_ranker

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


def test_every_ranker_class_is_registered() -> None:
    """Every concrete ranker in sim.rankers is in RANKERS: none forgot @register, none was
    overwritten by another class registered under the same name."""
    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    defined = {c for c in subclasses(Ranker) if c.__module__.startswith("sim.rankers.") and c.name}
    assert defined == set(RANKERS.values())
    assert sorted(RANKERS) == ["chronological", "content", "follower", "hybrid", "popularity", "random"]


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_ranker_passes_the_contract_suite(name: str) -> None:
    results = check_ranker(name)
    assert [r.check for r in results if not r.passed] == [], [r.detail for r in results if not r.passed]
    assert len(results) == 5


GOOD = """
import numpy as np
from sim.rankers.base import OTHER, Ranker, first_k_valid


class Newest(Ranker):
    def rank(self, users, now, k):
        st = self.state
        cand = np.broadcast_to(np.arange(len(st.posts))[::-1][: 4 * k], (len(users), min(len(st.posts), 4 * k)))
        valid = (st.posts.author[cand] != users[:, None]) & ~st.seen.contains(users[:, None], cand)
        return first_k_valid(cand, np.full(cand.shape, OTHER, np.int8), valid, k)


class Repeats(Newest):
    def rank(self, users, now, k):
        slate = super().rank(users, now, k)
        slate.post_ids[:, 0] = slate.post_ids[:, 1]
        return slate
"""


def check_ranker_command(tmp_path, ranker: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def, type-arg]
    (tmp_path / "my_rankers.py").write_text(GOOD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "sim", "check-ranker", ranker], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).parent.parent, timeout=120)


def test_check_ranker_passes_a_good_external_ranker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = check_ranker_command(tmp_path, "my_rankers:Newest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 5 and "my_rankers:Newest: 5 of 5 checks passed" in proc.stdout


def test_check_ranker_fails_a_ranker_that_repeats_posts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = check_ranker_command(tmp_path, "my_rankers:Repeats")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  slates obey the engine's rules over a short run" in proc.stdout
    assert "broke the slate rule 'duplicate'" in proc.stdout
    assert "4 of 5 checks passed" in proc.stdout


def test_check_ranker_names_an_unknown_ranker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = check_ranker_command(tmp_path, "no_such_module:Ranker")
    assert proc.returncode == 2 and "no_such_module" in proc.stderr


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
