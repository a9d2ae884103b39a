"""Small shared builders: tiny experiments, hand-built worlds and platform states.

Everything here is seeded; worlds are a few thousand users at most, so the
whole suite runs in well under a minute or two.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from sim.config import Experiment, parse
from sim.engine import Simulation
from sim.model.state import PlatformState, SeenFilter
from sim.model.world import Posts, Products, Users, World, edges_to_csr

# A small but lively world: enough posts that feeds do not run dry at once.
TINY: dict[str, Any] = {
    "seed": 11,
    "replicates": 1,
    "horizon_days": 0.25,  # 6 h
    "warmup_hours": 2.0,
    "tick_seconds": 60.0,
    "world": {"users": 3000, "posting_rate_mean": 0.5},
    "rankers": [{"name": "content"}, {"name": "follower"}],
}

# A planted 20-follower seller whose scenario post carries a product of small stock.
# Purchases are made likely so that the stock really runs out inside the horizon.
SCENARIO: dict[str, Any] = {
    "world": {
        "accounts": [{"name": "seller", "followers": 20, "topic": "#beautytok"}],
        "products": [{"name": "cream", "seller": "seller", "inventory": 4}],
    },
    "behavior": {"purchase_intercept": -3.0},
    "events": [{"name": "video", "account": "seller", "at_hours": 0.5, "quality_quantile": 0.99,
                "product": "cream"}],
}


#: A tiny batch for the command line and the API: two rankers, a planted account and its post.
TINY_TOML = """\
name = "tiny"
seed = 9
replicates = 1
horizon_days = 0.05
warmup_hours = 0.5

[world]
users = 400
posting_rate_mean = 0.5

[[world.accounts]]
name = "shop"
followers = 10
topic = "#crafttok"

[[events]]
name = "launch"
account = "shop"
at_hours = 0.2

[recording]
impression_sample_rate = 0.2

[[rankers]]
name = "follower"

[[rankers]]
name = "content"
"""


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``changes`` into a copy of ``base`` (tables merge, everything else replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def experiment_table(*changes: Mapping[str, Any]) -> dict[str, Any]:
    """The TINY experiment as a TOML-shaped dict, with ``changes`` merged in order."""
    table = copy.deepcopy(TINY)
    for change in changes:
        table = merge(table, change)
    return table


def make_experiment(*changes: Mapping[str, Any]) -> Experiment:
    """A validated tiny experiment."""
    return parse(experiment_table(*changes), source="test.toml")


def spec_of(exp: Experiment, label: str):  # type: ignore[no-untyped-def]
    return next(s for s in exp.rankers if (s.label or s.name) == label)


def run_simulation(exp: Experiment, label: str, replicate: int = 0) -> Simulation:
    """Run one simulation to its horizon; returns the Simulation (``.recorder.tables`` holds results)."""
    sim = Simulation(exp, spec_of(exp, label), replicate)
    sim.run()
    return sim


# --------------------------------------------------------------------------- hand-built worlds


def hand_world(n_users: int, edges: tuple[tuple[int, int], ...] = (), n_topics: int = 3, seed: int = 0) -> World:
    """A world of ``n_users`` with the given follow edges (follower, followee).

    Interests are drawn from a seeded Dirichlet; every user is active.
    """
    rng = np.random.default_rng(seed)
    interest = rng.dirichlet(np.full(n_topics, 0.5), n_users).astype(np.float32)
    affinity = (interest / interest.max(axis=1, keepdims=True)).astype(np.float32)
    users = Users(
        interest=interest, affinity=affinity, main_topic=interest.argmax(axis=1).astype(np.int16),
        attention_s=np.full(n_users, 3600.0, np.float32), active_share=np.full(n_users, 0.6, np.float32),
        posting_rate=np.zeros(n_users, np.float32), skill=np.zeros(n_users, np.float32),
        polish_sensitivity=np.ones(n_users, np.float32), active=np.ones(n_users, bool),
    )
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    products = Products.from_config((), np.zeros(0, np.int64))
    topics = tuple(f"#t{i}" for i in range(n_topics))
    return World(users=users, follows=edges_to_csr(src, dst, n_users), topics=topics, accounts={},
                 products=products)


def hand_state(world: World, expected_views: float = 100.0) -> PlatformState:
    """A platform state over ``world`` with no posts yet, wired as the engine wires it."""
    seen = SeenFilter(np.full(world.users.n, expected_views))
    return PlatformState(world, Posts(), seen)


def add_posts(state: PlatformState, authors, created_at, topic=0, length_s: float = 30.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Append posts and push them to the author and topic rings, as ``Simulation.add_posts`` does."""
    authors = np.atleast_1d(np.asarray(authors, dtype=np.int64))
    m = len(authors)
    created = np.broadcast_to(np.asarray(created_at, dtype=np.float64), (m,)).copy()
    topics = np.broadcast_to(np.asarray(topic, dtype=np.int64), (m,)).copy()
    ids = state.posts.append(author=authors, topic=topics, quality=np.zeros(m), authenticity=np.ones(m),
                             length_s=np.full(m, length_s), created_at=created,
                             author_followers_at_post=state.follower_counts[authors])
    state.author_posts.push(authors, ids)
    state.topic_posts.push(topics, ids)
    return ids


# --------------------------------------------------------------------------- shared runs


@pytest.fixture(scope="session")
def scenario_experiment() -> Experiment:
    """TINY plus the planted seller, full impression recording."""
    return make_experiment(SCENARIO, {"recording": {"impression_sample_rate": 1.0}})


@pytest.fixture(scope="session")
def scenario_runs(scenario_experiment: Experiment) -> dict[str, Simulation]:
    """One finished simulation per ranker of the scenario experiment (replicate 0), by label."""
    return {spec.label: run_simulation(scenario_experiment, spec.label) for spec in scenario_experiment.rankers}
