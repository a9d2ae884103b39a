"""Hypothesis properties of the small pure pieces: seen filter, stock, rings, Gini."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.metrics import gini
from sim.model.behavior import allocate_stock
from sim.model.state import Rings, SeenFilter

N_USERS = 12

pairs = st.lists(st.tuples(st.integers(0, N_USERS - 1), st.integers(0, 2**40)), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(pairs=pairs, expected=st.lists(st.floats(0, 200), min_size=N_USERS, max_size=N_USERS),
       batches=st.integers(1, 4))
def test_seen_filter_has_no_false_negatives(pairs: list[tuple[int, int]], expected: list[float],
                                            batches: int) -> None:
    seen = SeenFilter(np.asarray(expected))
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    posts = np.array([p for _, p in pairs], dtype=np.int64)
    for part in np.array_split(np.arange(len(pairs)), batches):
        seen.add(users[part], posts[part])
    assert seen.contains(users, posts).all()
    # 2-D queries, as rankers make them, agree with flat ones.
    grid = seen.contains(np.broadcast_to(users[:, None], (len(users), 1)), posts[:, None])
    assert grid.shape == (len(users), 1) and grid.all()


def test_seen_filter_false_positive_rate_is_small() -> None:
    rng = np.random.default_rng(3)
    n_users, views = 200, 100
    seen = SeenFilter(np.full(n_users, float(views)))
    users = np.repeat(np.arange(n_users), views)
    seen.add(users, rng.choice(10**7, len(users)))
    unseen = rng.choice(10**7, len(users)) + 10**7  # disjoint from the added ids
    assert seen.contains(users, unseen).mean() < 0.05


def test_seen_filter_is_per_user() -> None:
    seen = SeenFilter(np.full(50, 20.0))
    seen.add(np.array([7]), np.array([123]))
    others = np.array([u for u in range(50) if u != 7])
    assert seen.contains(np.array([7]), np.array([123])).all()
    assert seen.contains(others, np.full(len(others), 123)).mean() < 0.1


@settings(max_examples=300, deadline=None)
@given(intents=st.lists(st.integers(0, 4), max_size=200),
       inventory=st.lists(st.integers(0, 30), min_size=5, max_size=5))
def test_allocate_stock_serves_first_intents_up_to_inventory(intents: list[int], inventory: list[int]) -> None:
    product = np.asarray(intents, dtype=np.int64)
    stock = np.asarray(inventory, dtype=np.int64)
    before = stock.copy()
    sold = allocate_stock(product, stock)
    assert sold.shape == product.shape and sold.dtype == bool
    assert (stock == before).all(), "allocate_stock must not change the inventory itself"
    for p in range(len(stock)):
        mine = sold[product == p]
        n_sold = min(len(mine), int(stock[p]))
        assert mine.tolist() == [True] * n_sold + [False] * (len(mine) - n_sold)
    assert (np.bincount(product[sold], minlength=len(stock)) <= stock).all()


def test_allocate_stock_with_no_intents() -> None:
    assert allocate_stock(np.zeros(0, np.int64), np.array([3, 0])).tolist() == []


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 6),
       batches=st.lists(st.lists(st.integers(0, 3), max_size=20), min_size=1, max_size=6))
def test_rings_keep_the_newest_ids_per_owner(size: int, batches: list[list[int]]) -> None:
    n_owners = 4
    rings = Rings(n_owners, size)
    history: list[list[int]] = [[] for _ in range(n_owners)]
    next_id = 0
    for owners in batches:
        ids = np.arange(next_id, next_id + len(owners), dtype=np.int64)
        next_id += len(owners)
        rings.push(np.asarray(owners, dtype=np.int64), ids)
        for o, i in zip(owners, ids, strict=True):
            history[o].append(int(i))
    for o in range(n_owners):
        kept = history[o][-size:]
        assert rings.head[o] == len(history[o])
        # Read newest first from the head, as the ring's docstring describes.
        newest_first = [int(rings.items[o, (rings.head[o] - 1 - j) % size]) for j in range(len(kept))]
        assert newest_first == kept[::-1]
        assert sorted(rings.items[o][rings.items[o] >= 0].tolist()) == sorted(kept)
        assert (rings.items[o] == -1).sum() == size - len(kept)


values = st.lists(st.floats(0, 1e9, allow_nan=False), min_size=1, max_size=100)


@settings(max_examples=300, deadline=None)
@given(values=values)
def test_gini_is_between_zero_and_one(values: list[float]) -> None:
    g = gini(np.asarray(values))
    assert 0.0 <= g <= 1.0


@settings(max_examples=100, deadline=None)
@given(value=st.floats(0, 1e9, allow_nan=False), n=st.integers(1, 200))
def test_gini_of_equal_values_is_zero(value: float, n: int) -> None:
    assert abs(gini(np.full(n, value))) < 1e-9


@settings(max_examples=100, deadline=None)
@given(values=values, scale=st.floats(1e-3, 1e3))
def test_gini_is_scale_and_order_invariant(values: list[float], scale: float) -> None:
    x = np.asarray(values)
    assert abs(gini(x * scale) - gini(x)) < 1e-9
    assert abs(gini(x[::-1]) - gini(x)) < 1e-12


def test_gini_of_one_taker_is_n_minus_one_over_n() -> None:
    assert gini(np.array([0.0, 0.0, 0.0, 4.0])) == 0.75
    assert gini(np.zeros(5)) == 0.0
    assert gini(np.zeros(0)) == 0.0
