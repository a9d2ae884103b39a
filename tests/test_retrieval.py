"""The content ranker's candidate generation: interest retrieval weighted by what a post earned
in the pools and by its age, and what it leaves a post that failed its test pool."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_experiment, run_simulation, spec_of

from sim.engine import Simulation, posting
from sim.rankers.content import ContentRanker

DAY = 86_400.0
PARAMS = {"retrieval_base": 10.0, "retrieval_half_life_h": 24.0}


def weights(ranker: ContentRanker, topic: int) -> dict[int, float]:
    """Each retrieval candidate of ``topic`` and its (unnormalised) draw weight."""
    cum = ranker.retrieval_cum[topic]
    w = np.diff(np.concatenate([[0.0], cum]))
    return {int(p): float(x) for p, x in zip(ranker.retrieval_posts[topic], w, strict=True) if p >= 0}


def test_retrieval_weight_rises_with_earned_stage_and_halves_with_age() -> None:
    # Every slot goes to retrieval (no pools, follow slots or exploration).
    params = {**PARAMS, "retrieval_share": 1.0, "follow_share": 0.0, "explore_share": 0.0}
    exp = make_experiment({"rankers": [{"name": "content", "params": params}]})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    ranker, st = sim.ranker, sim.state
    assert isinstance(ranker, ContentRanker)
    ranker.start(st)
    cols = {"topic": np.zeros(2, int), "quality": np.zeros(2), "authenticity": np.ones(2),
            "length_s": np.full(2, 30.0)}
    climber, failed = posting.add_posts(sim.platform, sim.listening, {"author": np.array([5, 6]), **cols}, 0.0)
    ranker.review(0.0)  # both enter stage 0
    # Stage 0's threshold is 0 (a history of zeros): the climber's test batch scores above it.
    ranker.history[0] = np.zeros(100)
    ranker.stage_n[[climber, failed]] = 300
    ranker.stage_sum[climber] = 300 * 5.0
    fresh = posting.add_posts(sim.platform, sim.listening, {"author": np.array([7, 8]), **cols}, DAY)
    ranker.review(DAY)  # the climber goes to stage 1, the other fails; the fresh posts enter stage 0
    assert ranker.earned[climber] == 1 and ranker.earned[failed] == 0 and ranker.stage[failed] == -1
    w = weights(ranker, 0)
    assert set(w) == {climber, failed, *fresh.tolist()}  # each candidate once
    # Both the climber (in its new stage, no impressions yet) and the fresh posts stand at their
    # stage's mean: merit 1.5 and 0.5.  One stage up is x10, one half-life of age is x1/2.
    assert w[climber] / w[int(fresh[0])] == pytest.approx(5.0, rel=1e-12)
    assert w[int(fresh[0])] == pytest.approx(w[int(fresh[1])], rel=1e-12)
    # The failed post stands below its stage's mean (merit under 0.5), and is a day old.
    standing = float(ranker._standing(np.array([failed]))[0])
    assert standing < 0
    merit = 1.0 / (1.0 + np.exp(-standing))
    assert w[failed] / w[int(fresh[0])] == pytest.approx(10.0 ** (merit - 0.5) / 2.0, rel=1e-12)
    # Draws follow the weights, for 2,000 viewers whose only interest is topic 0.
    viewers = np.arange(100, 2100)
    st.interest_cum[viewers] = 1.0
    drawn = ranker.rank(viewers, DAY, 1).post_ids[:, 0]
    for post, weight in w.items():
        expected = weight / sum(w.values())
        assert abs(np.mean(drawn == post) - expected) < 4 * np.sqrt(expected * (1 - expected) / len(viewers))


@pytest.fixture(scope="module")
def day_run() -> Simulation:
    """A day of a 20,000-user world under the content ranker.  Its stage-0 pools fill slowly (a
    median of ~50 impressions by the stage's timeout), so the early look comes at 20."""
    exp = make_experiment({"horizon_days": 1.0, "world": {"users": 20_000},
                           "rankers": [{"name": "content", "params": {"early_look": 20}}]})
    return run_simulation(exp, "content")


def test_a_post_that_fails_its_test_pool_gets_little_beyond_it(day_run: Simulation) -> None:
    sim = day_run
    ranker = sim.ranker
    assert isinstance(ranker, ContentRanker)
    p = sim.posts
    n = len(p)
    pool_first = ranker.params.pool_first
    reviewed = (ranker.stage[:n] == -1) & (p.created_at[:n] >= 0)
    failed = reviewed & (ranker.earned[:n] == 0)
    climbed = ranker.earned[:n] >= 1
    assert failed.sum() > 100 and climbed.sum() > 10
    views = p.views[:n].astype(float)
    # The test batch (a timeout can leave it short), plus a bounded remainder.
    assert np.median(views[failed]) <= pool_first * 1.1
    assert views[failed].mean() <= pool_first * 1.5
    # Retrieval sends a climber several times what it sends a failed post (in a world this small
    # the climbers' audiences run out: they have been seen by most of their topic).
    explore = p.views_explore[:n].astype(float)
    assert explore[climbed].mean() > 4 * explore[failed].mean()


def test_the_early_look_retires_posts_whose_first_impressions_score_poorly() -> None:
    exp = make_experiment({"rankers": [{"name": "content", "params": {"early_look": 100, "early_stop_share": 0.5}}]})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    ranker = sim.ranker
    assert isinstance(ranker, ContentRanker)
    ranker.start(sim.state)
    cols = {"topic": np.zeros(3, int), "quality": np.zeros(3), "authenticity": np.ones(3),
            "length_s": np.full(3, 30.0)}
    poor, good, early = posting.add_posts(sim.platform, sim.listening, {"author": np.array([5, 6, 7]), **cols}, 0.0)
    ranker.review(0.0)
    ranker.early_history = np.ones(100)  # recent early looks scored 1: the median is 1
    ranker.stage_n[[poor, good, early]] = [100, 100, 99]
    ranker.stage_sum[good] = 100 * 5.0  # scores above 1; the poor post scores 0
    decisions = ranker.review(60.0)
    assert decisions is not None
    assert decisions.post.tolist() == [poor] and decisions.early is not None and decisions.early.tolist() == [True]
    assert decisions.impressions.tolist() == [100] and not decisions.promoted.any()
    assert ranker.stage[poor] == -1 and ranker.earned[poor] == 0
    assert ranker.stage[good] == 0 and ranker.looked[good] and not ranker.looked[early]
    # A post is looked at once: the good one goes on to its full batch.
    ranker.stage_n[good] = 150
    assert ranker.review(120.0) is None
    assert ranker.stage[good] == 0


def test_early_stops_are_recorded_in_the_promotions_table(day_run: Simulation) -> None:
    sim = day_run
    t = sim.recorder.tables["promotions"].to_pydict()
    early = np.array(t["early_stop"], bool)
    stage = np.array(t["stage"])
    impressions = np.array(t["impressions"])
    assert early.any() and (stage[early] == 0).all() and not np.array(t["promoted"], bool)[early].any()
    assert (impressions[early] >= sim.ranker.params.early_look).all()
    assert 0.2 < early[stage == 0].mean() < 0.8  # about early_stop_share of the posts looked at


def heavy_topic(tries: int, n_light: int) -> tuple[Simulation, ContentRanker, int, np.ndarray]:
    """A world whose topic 0 holds one climber (stage 1: weight 10 x a fresh post's) and ``n_light``
    fresh posts; every slot goes to retrieval, ``tries`` draws each, two candidates per slot and no
    uniform refill."""
    params = {**PARAMS, "retrieval_share": 1.0, "follow_share": 0.0, "explore_share": 0.0, "retrieval_tries": tries,
              "fallback_oversample": 0, "refill_rounds": 0}
    exp = make_experiment({"rankers": [{"name": "content", "params": params}]})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    ranker = sim.ranker
    assert isinstance(ranker, ContentRanker)
    ranker.start(sim.state)
    m = n_light + 1
    cols = {"topic": np.zeros(m, int), "quality": np.zeros(m), "authenticity": np.ones(m), "length_s": np.full(m, 30.0)}
    ids = posting.add_posts(sim.platform, sim.listening, {"author": np.arange(10, 10 + m), **cols}, 0.0)
    ranker.review(0.0)
    ranker.earned[ids[0]] = 1
    ranker.climbers.push(np.array([0]), ids[:1])  # as its promotion would
    ranker.review(0.0)
    w = weights(ranker, 0)
    assert set(w) == set(ids.tolist()) and w[int(ids[0])] == pytest.approx(10 * w[int(ids[1])], rel=1e-12)
    return sim, ranker, int(ids[0]), ids[1:]


def test_retrieval_fails_on_a_seen_candidate_as_often_as_plain_draws() -> None:
    # Viewers who have seen the climber: each of a slot's two candidates makes 3 tries, and each try
    # lands on the climber with probability q, so the slot stays empty with probability q ** 6 (the
    # kernel counts the tries on a known candidate instead of making them: the same outcome).
    sim, ranker, climber, light = heavy_topic(tries=3, n_light=2)
    w = weights(ranker, 0)
    q = w[climber] / sum(w.values())
    viewers = np.arange(100, 2900)
    sim.state.interest_cum[viewers] = 1.0
    sim.state.seen.add(viewers, np.full(len(viewers), climber))
    row = ranker.rank(viewers, 0.0, 1).post_ids[:, 0]
    assert set(row[row >= 0].tolist()) <= set(light.tolist())
    empty, expected = np.mean(row < 0), q**6
    assert abs(empty - expected) < 4 * np.sqrt(expected * (1 - expected) / len(viewers))


def test_retrieval_draws_the_rest_in_proportion_to_weight() -> None:
    # Given a slot that was filled, its post is drawn among the candidates the viewer may be
    # shown, in proportion to their weights (here a fresh post and one a day old: 2 to 1).
    sim, ranker, climber, light = heavy_topic(tries=8, n_light=2)
    sim.platform.posts.cols["created_at"][light[1]] = -DAY
    ranker.review(0.0)
    w = weights(ranker, 0)
    assert w[int(light[0])] == pytest.approx(2 * w[int(light[1])], rel=1e-12)
    viewers = np.arange(100, 2900)
    sim.state.interest_cum[viewers] = 1.0
    sim.state.seen.add(viewers, np.full(len(viewers), climber))
    row = ranker.rank(viewers, 0.0, 1).post_ids[:, 0]
    filled = row[row >= 0]
    assert len(filled) > 0.8 * len(viewers) and set(filled.tolist()) <= set(light.tolist())
    share = np.mean(filled == light[0])
    assert abs(share - 2 / 3) < 4 * np.sqrt(2 / 9 / len(filled))
