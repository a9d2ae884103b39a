"""The ranker contract, checked for every registered ranker on a small running state.

In the spirit of scikit-learn's estimator checks: the constructor stores its parameters and does
no work; the same generator gives the same slates; every ``Params`` field has a description and a
range; slates obey the engine's rules.  Rankers that break each rule show that
``check_ranker`` (``python -m sim check-ranker``) catches it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_experiment, run_simulation

from sim.config import Experiment
from sim.engine import Simulation
from sim.model.state import PlatformState
from sim.params import knob
from sim.rankers import CHANNEL_NAMES, RANKERS, Ranker, Slate
from sim.rankers.baselines import BaselineParams, RandomRanker
from sim.rankers.contract import check_ranker

K = 12


@pytest.fixture(scope="module")
def contract_experiment() -> Experiment:
    return make_experiment({"world": {"users": 1500}, "horizon_days": 0.1, "warmup_hours": 2.0,
                            "rankers": [{"name": name} for name in sorted(RANKERS)],
                            "recording": {"impression_sample_rate": 1.0}})


@pytest.fixture(scope="module", params=sorted(RANKERS))
def finished(request: pytest.FixtureRequest, contract_experiment: Experiment) -> Simulation:
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
    def subclasses(cls: type[Ranker]) -> list[type[Ranker]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    defined = {c for c in subclasses(Ranker) if c.__module__.startswith("sim.rankers.") and c.name}
    assert defined == set(RANKERS.values())
    assert sorted(RANKERS) == ["chronological", "content", "follower", "hybrid", "popularity", "random"]


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_ranker_passes_the_contract_suite(name: str) -> None:
    results = check_ranker(name)
    assert [r.check for r in results if not r.passed] == [], [r.detail for r in results if not r.passed]
    assert len(results) == 5


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_constructor_stores_parameters_and_does_no_work(name: str) -> None:
    """scikit-learn's rule: ``__init__`` stores what it is given and nothing else; work (and every
    draw from the generator) waits for ``start`` and ``rank``."""
    cls = RANKERS[name]
    params, rng = cls.Params(), np.random.default_rng(0)
    before = rng.bit_generator.state
    ranker = cls(params, rng)
    assert ranker.params is params and ranker.rng is rng
    assert ranker.state is None
    assert set(vars(ranker)) == {"params", "rng", "state"}, "state built in __init__, not in start()"
    assert rng.bit_generator.state == before, "the constructor drew from its generator"


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_every_params_field_has_a_description_and_a_range(name: str) -> None:
    params = RANKERS[name].Params
    assert dataclasses.is_dataclass(params)
    fields = dataclasses.fields(params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(params(), fields[0].name, None)
    for f in fields:
        meta = f.metadata
        assert meta.get("desc"), f"{name}.{f.name}: no description"
        if f.type in ("int", "float"):
            assert meta.get("lo") is not None or meta.get("hi") is not None, f"{name}.{f.name}: no range"
        elif f.type == "str":
            assert meta.get("choices"), f"{name}.{f.name}: no choices"
        else:
            assert f.type == "bool", f"{name}.{f.name}: a {f.type} field has no range rule here"


def test_the_same_generator_gives_the_same_slates(finished: Simulation) -> None:
    """Two rankers built alike with equal generators, started on the same state, rank alike (and a
    ranker that draws rank after rank does not repeat itself by accident: its generator moves)."""
    sim = finished
    users = users_to_rank(sim)
    cls, params = type(sim.ranker), sim.ranker.params
    slates = []
    for _ in range(2):
        ranker = cls(params, np.random.default_rng(7))
        ranker.start(sim.state)
        ranker.review(sim.env.now)
        slates.append([ranker.rank(users, sim.env.now, K) for _ in range(2)])
    for first, second in zip(*slates, strict=True):
        assert np.array_equal(first.post_ids, second.post_ids)
        assert np.array_equal(first.channel, second.channel)


# --------------------------------------------------------------------------- the suite catches breaches


class _Stores(RandomRanker):
    """Builds a table in ``__init__``."""

    name = "stores-test"

    def __init__(self, params: Any, rng: np.random.Generator) -> None:
        super().__init__(params, rng)
        self.table = np.zeros(4)


class _Draws(RandomRanker):
    """Draws from its generator in ``__init__``."""

    name = "draws-test"

    def __init__(self, params: Any, rng: np.random.Generator) -> None:
        rng.random()
        super().__init__(params, rng)


@dataclasses.dataclass(frozen=True)
class _BareParams(BaselineParams):
    oversample: int = knob(4, "candidates drawn per slot")  # no range


class _Undocumented(RandomRanker):
    """A Params field without a range."""

    name = "undocumented-test"
    Params = _BareParams


class _Unseeded(RandomRanker):
    """Draws from a generator of its own, not the one it was given."""

    name = "unseeded-test"

    def start(self, state: PlatformState) -> None:
        super().start(state)
        self.rng = np.random.default_rng()


class _Writes(RandomRanker):
    """Counts a view of post 0 every time it ranks: it writes the platform state."""

    name = "writes-test"

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        assert self.state is not None
        self.state.posts.views[:1] += 1
        return super().rank(users, now, k)


@pytest.mark.parametrize(("cls", "failed"), [
    (_Stores, "constructor stores params and rng and does no work"),
    (_Draws, "constructor stores params and rng and does no work"),
    (_Undocumented, "every Params field has a description and a range"),
    (_Unseeded, "the same generator gives the same slates; rank() does not write the state"),
    (_Writes, "the same generator gives the same slates; rank() does not write the state"),
], ids=lambda v: getattr(v, "name", ""))
def test_the_contract_suite_fails_a_ranker_that_breaks_it(cls: type[Ranker], failed: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RANKERS, cls.name, cls)
    results = check_ranker(cls.name)
    assert [r.check for r in results if not r.passed] == [failed], results


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


def check_ranker_command(tmp_path: Path, ranker: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "my_rankers.py").write_text(GOOD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "sim", "check-ranker", ranker], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).parent.parent, timeout=120)


def test_check_ranker_passes_a_good_external_ranker(tmp_path: Path) -> None:
    proc = check_ranker_command(tmp_path, "my_rankers:Newest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 5 and "my_rankers:Newest: 5 of 5 checks passed" in proc.stdout


def test_check_ranker_fails_a_ranker_that_repeats_posts(tmp_path: Path) -> None:
    proc = check_ranker_command(tmp_path, "my_rankers:Repeats")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  slates obey the engine's rules over a short run" in proc.stdout
    assert "broke the slate rule 'duplicate'" in proc.stdout
    assert "4 of 5 checks passed" in proc.stdout


def test_check_ranker_names_an_unknown_ranker(tmp_path: Path) -> None:
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
