"""Slates sized to each session: the engine asks every row for what its remaining time is expected
to watch, and the content ranker stops each row at its length."""

from __future__ import annotations

import numpy as np
from conftest import make_experiment, run_simulation

from sim.engine.serving import MAX_SLATE, slate_lengths
from sim.rankers.base import Ranker, Slate
from sim.rankers.content import ContentRanker


def test_slate_lengths_cover_the_expected_views_plus_the_one_that_ends_the_session() -> None:
    remaining = np.array([0.5, 10.0, 25.0, 95.0, 1e6])
    assert slate_lengths(remaining, per_view=10.0).tolist() == [2, 2, 4, 11, MAX_SLATE]


def test_the_content_ranker_stops_each_row_at_its_length() -> None:
    exp = make_experiment({"horizon_days": 0.5, "rankers": [{"name": "content"}]})
    sim = run_simulation(exp, "content")  # a world with posts to draw from
    ranker = sim.ranker
    assert isinstance(ranker, ContentRanker)
    users = np.arange(40, dtype=np.int64)
    lengths = np.arange(40, dtype=np.int64) % 7 + 1
    slate = ranker.rank_rows(users, sim.env.now, lengths)
    assert slate.post_ids.shape == (40, 7)
    filled = (slate.post_ids >= 0).sum(axis=1)
    assert (filled == lengths).all()  # For You does not run dry here: every row gets its length
    assert (np.logical_and.accumulate(slate.post_ids >= 0, axis=1).sum(axis=1) == filled).all()


class _Fixed(Ranker):
    """Every row the same 3 posts, whatever is asked: a feed that runs dry after three."""

    name = "fixed3"

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        slate = Slate.empty(len(users), k)
        slate.post_ids[:, : min(k, 3)] = np.arange(min(k, 3))
        return slate


def test_the_default_rank_rows_ranks_the_widest_row_for_every_row() -> None:
    slate = _Fixed(None, np.random.default_rng(0)).rank_rows(np.arange(3), 0.0, np.array([1, 5, 2]))
    assert slate.post_ids.shape == (3, 5)
    assert (slate.post_ids[:, :3] == [0, 1, 2]).all() and (slate.post_ids[:, 3:] == -1).all()

