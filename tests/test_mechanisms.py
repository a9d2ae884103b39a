"""Scenario mechanisms on tiny worlds: sounds and derivatives, sound pages, commerce with
restocks, bought followers and likes, polish, and the measures they feed."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import SCENARIO, make_experiment, run_simulation, spec_of

from sim.analysis.metrics import summarise
from sim.batch.runner import Runner, plan
from sim.config import BehaviorConfig, ConfigError, Experiment, apply_overrides, parse
from sim.engine import Simulation, inspiration, listening, posting, sounds
from sim.engine.arrivals import draw_sessions
from sim.engine.listening import shift_mix
from sim.engine.sounds import SOUND_PAGE_WIDTH
from sim.model import behavior
from sim.model.world import build_world
from sim.rankers.base import EXPLORE, FOLLOWING, SOUND, Feedback, Slate

SONG = {
    "world": {"accounts": [{"name": "artist", "followers": 10, "topic": "#musictok", "posting_rate": 0.0}]},
    "events": [{"name": "song", "account": "artist", "at_hours": 0.0, "quality_quantile": 0.99,
                "sound": "anthem"}],
}


def measures(sim: Simulation) -> dict[tuple[str, str, str], float | None]:
    t = sim.recorder.tables["measures"].to_pydict()
    return {(k, e, m): v for k, e, m, v in zip(t["kind"], t["entity"], t["metric"], t["value"], strict=True)}


def add(sim: Simulation, columns: dict[str, np.ndarray], now: float = 0.0) -> np.ndarray:
    """Add posts to a simulation that is not running; returns their ids."""
    return posting.add_posts(sim.platform, sim.listening, columns, now)


def content_sim_with_two_posts(*changes: dict) -> tuple[Simulation, np.ndarray]:  # type: ignore[type-arg]
    """A content-ranker simulation, not run, with two fresh posts that have entered stage 0."""
    exp = make_experiment(*changes)
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    sim.ranker.start(sim.state)
    ids = add(sim, {"author": np.array([5, 6]), "topic": np.zeros(2, int), "quality": np.zeros(2),
                    "authenticity": np.ones(2), "length_s": np.full(2, 30.0)}, 0.0)
    sim.ranker.review(0.0)  # both enter stage 0
    return sim, ids


# --------------------------------------------------------------------------- sounds and derivatives


@pytest.fixture(scope="module")
def duet_run() -> Simulation:
    # Derivatives as extra posts (not the default: at the viewer's next post), made very likely,
    # with a short delay, so that chains form inside 6 hours.
    exp = make_experiment(SONG, {"behavior": {"derivative_intercept": -4.0, "derivative_delay_hours": 0.2,
                                              "derivative_at_posting": False},
                                 "recording": {"impression_sample_rate": 1.0}})
    return run_simulation(exp, "content")


def test_derivatives_reuse_their_parents_sound_one_level_deeper(duet_run: Simulation) -> None:
    p = duet_run.posts
    child = np.flatnonzero(p.parent >= 0)
    assert len(child) > 50
    parent = p.parent[child]
    assert np.array_equal(p.sound[child], p.sound[parent])
    assert np.array_equal(p.depth[child], p.depth[parent] + 1)
    assert np.array_equal(p.topic[child], p.topic[parent])
    assert (p.created_at[child] >= p.created_at[parent]).all()
    assert (p.author[child] != p.author[parent]).all()
    assert np.array_equal(p.derivatives, np.bincount(parent, minlength=len(p)))
    assert p.depth.max() >= 2  # derivatives of derivatives


def test_every_sound_has_one_original(duet_run: Simulation) -> None:
    p, table = duet_run.posts, duet_run.sounds
    origin = table.origin
    assert np.array_equal(p.sound[origin], np.arange(len(table)))
    assert (p.parent[origin] < 0).all()
    assert np.array_equal(table.artist, p.author[origin])


def test_a_songs_appeal_can_differ_from_its_video_and_carries_into_derivatives() -> None:
    plain_video = {"events": [{**SONG["events"][0], "quality_quantile": 0.5, "appeal_quantile": 0.99}]}
    exp = make_experiment(SONG, plain_video, {"behavior": {"derivative_intercept": -4.0,
                                                           "derivative_delay_hours": 0.2,
                                                           "derivative_at_posting": False}})
    sim = run_simulation(exp, "content")
    p, sid = sim.posts, sim.sounds.names["anthem"]
    origin = int(sim.sounds.origin[sid])
    assert p.quality[origin] == pytest.approx(0.0) and sim.sounds.appeal[sid] == pytest.approx(2.326, abs=1e-3)
    child = np.flatnonzero(p.sound == sid)[1:]
    assert len(child) > 5 and (p.parent[child] >= 0).all()
    carry = exp.behavior.sound_carry  # a derivative's quality: its maker's, pulled toward the song's appeal
    maker = (p.quality[child] - carry * sim.sounds.appeal[sid]) / (1 - carry)
    assert p.quality[child].mean() > maker.mean()


def test_named_sound_measures_match_the_posts_and_impressions(duet_run: Simulation) -> None:
    m = measures(duet_run)
    p = duet_run.posts
    sid = duet_run.sounds.names["anthem"]
    uses = p.sound == sid
    assert m[("sound", "anthem", "posts")] == uses.sum()
    assert m[("sound", "anthem", "views")] == p.views[uses].sum()
    assert m[("sound", "anthem", "derivative_posts")] == (uses & (p.parent >= 0)).sum()
    imp = duet_run.recorder.tables["impressions"].to_pydict()
    viewers = {u for u, post in zip(imp["user_id"], imp["post_id"], strict=True) if uses[post]}
    assert m[("sound", "anthem", "unique_listeners")] == len(viewers)


def test_derivatives_at_posting_turn_ordinary_posts_into_uses_of_a_heard_sound() -> None:
    def run(at_posting: bool) -> Simulation:
        exp = make_experiment(SONG, {"behavior": {"derivative_intercept": -4.0, "derivative_delay_hours": 0.2,
                                                  "inspire_rate": 0.0, "derivative_at_posting": at_posting},
                                     "recording": {"impression_sample_rate": 1.0}})
        return run_simulation(exp, "content")

    extra, at_posting = run(False), run(True)
    ordinary = (extra.posts.parent < 0) & (extra.posts.event < 0)
    p = at_posting.posts
    child = np.flatnonzero(p.parent >= 0)
    assert len(child) > 10
    # The posting stream draws the same posts; some of them now use a sound instead of adding one.
    assert (p.event < 0).sum() == ordinary.sum()
    parent = p.parent[child]
    assert np.array_equal(p.sound[child], p.sound[parent]) and np.array_equal(p.depth[child], p.depth[parent] + 1)
    assert np.array_equal(np.bincount(parent, minlength=len(p.author)), p.derivatives)
    # A derivative's author watched its parent first, and no derivative releases a sound of its own.
    imp = at_posting.recorder.tables["impressions"].to_pydict()
    seen: dict[tuple[int, int], float] = {}
    for u, q, t in zip(imp["user_id"], imp["post_id"], imp["time_s"], strict=True):
        seen[(u, q)] = min(t, seen.get((u, q), np.inf))
    assert all(seen.get((p.author[c], p.parent[c]), np.inf) <= p.created_at[c] for c in child)
    assert len(at_posting.sounds.origin) == ((p.parent < 0) & (p.sound >= 0)).sum()


def test_an_authors_first_post_uses_the_sound_in_mind_in_its_own_topic() -> None:
    exp = make_experiment(SONG, {"behavior": {"derivative_at_posting": True, "sound_carry": 0.5}})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    cols = {"author": np.array([1, 2]), "topic": np.array([0, 1]), "quality": np.array([1.0, 0.0]),
            "authenticity": np.ones(2), "length_s": np.full(2, 30.0)}
    heard = add(sim, cols, 0.0)
    sound = sounds.release_sounds(sim.sound_state, sim.posts, heard, 0.0)
    sim.sound_state.in_mind[[5, 9]] = heard
    sim.sound_state.n_moved[[5, 9]] = 2
    parents = sounds.use_sounds_in_mind(sim.sound_state, np.array([5, 7, 5, 9]))
    assert list(parents) == [heard[0], -1, -1, heard[1]]  # each author's first post only
    assert (sim.sound_state.in_mind[[5, 7, 9]] == -1).all()  # used, then forgotten
    assert (sim.sound_state.n_moved[[5, 7, 9]] == 0).all()  # favourites start afresh after a post
    columns = {"topic": np.array([2, 2, 2, 2]), "quality": np.array([0.0, 0.0, 0.0, -1.0])}
    sounds.derive(sim.sound_state, sim.platform, columns, parents, keep_topic=True)
    assert list(columns["topic"]) == [2, 2, 2, 2] and list(columns["sound"]) == [sound[0], -1, -1, sound[1]]
    assert list(columns["quality"]) == [0.5, 0.0, 0.0, -0.5]  # half the creator's, half the sound's appeal
    assert list(columns["depth"]) == [1, 0, 0, 1]
    sounds.derive(sim.sound_state, sim.platform, columns, parents)  # a duet: the parent's topic
    assert list(columns["topic"]) == [0, 2, 2, 1]


def test_the_sound_in_mind_is_a_reservoir_sample_of_the_distinct_sounds_that_moved_the_viewer() -> None:
    # Viewer 0 is moved by sounds 7, 7, 8, 7, 9 (posts 70, 71, 80, 72, 90): the repeats of 7 are
    # not new choices.  The k-th distinct sound replaces the one in mind when u * k < 1.
    moved_by = np.full((2, 4), -1, np.int32)
    n_moved, in_mind = np.zeros(2, np.int32), np.full(2, -1, np.int64)
    viewer, post, sound = np.zeros(5, np.int64), np.array([70, 71, 80, 72, 90]), np.array([7, 7, 8, 7, 9])
    sounds.keep_in_mind(viewer, post, sound, np.array([0.9, 0.0, 0.6, 0.0, 0.3]), moved_by, n_moved, in_mind)
    assert n_moved[0] == 3 and list(moved_by[0, :3]) == [7, 8, 9]
    assert in_mind[0] == 90  # 70 first (0.9 * 1 < 1), kept over 80 (0.6 * 2 >= 1), then 90 (0.3 * 3 < 1)
    assert in_mind[1] == -1 and n_moved[1] == 0
    # Past the favourites' width the oldest is forgotten: sound 7 is new again.
    viewer, post, sound = np.zeros(3, np.int64), np.array([100, 110, 73]), np.array([10, 11, 7])
    sounds.keep_in_mind(viewer, post, sound, np.ones(3), moved_by, n_moved, in_mind)
    assert n_moved[0] == 6 and list(moved_by[0]) == [11, 7, 9, 10] and in_mind[0] == 90


def test_a_sound_heard_often_is_in_mind_no_more_often_than_one_heard_once() -> None:
    # 20,000 viewers each moved by sound 1 five times and by sounds 2 and 3 once, interleaved.
    n = 20_000
    order = np.array([1, 2, 1, 1, 3, 1, 1])
    viewer = np.repeat(np.arange(n), len(order))
    sound = np.tile(order, n)
    rng = np.random.default_rng(3)
    in_mind = np.full(n, -1, np.int64)
    sounds.keep_in_mind(viewer, sound * 10, sound, rng.random(len(viewer)), np.full((n, 16), -1, np.int32),
                        np.zeros(n, np.int32), in_mind)
    share = np.bincount(in_mind // 10, minlength=4)[1:] / n
    assert np.allclose(share, 1 / 3, atol=4 * np.sqrt(2 / 9 / n))


def test_past_the_favourites_width_a_sound_heard_throughout_keeps_about_one_in_width() -> None:
    # Sound 0 is heard before each of 60 others: the ring forgets it, and it comes back as new.
    n, others = 20_000, 60
    order = np.stack([np.zeros(others, np.int64), np.arange(1, others + 1)], axis=1).ravel()
    viewer = np.repeat(np.arange(n), len(order))
    sound = np.tile(order, n)
    in_mind = np.full(n, -1, np.int64)
    sounds.keep_in_mind(viewer, sound, sound, np.random.default_rng(4).random(len(viewer)),
                        np.full((n, sounds.FAVOURITES), -1, np.int32), np.zeros(n, np.int32), in_mind)
    share = np.mean(in_mind == 0)
    assert 1 / (2 * sounds.FAVOURITES) < share < 2 / sounds.FAVOURITES  # not its uniform 1/61
    assert share > 3 / (others + 1)


def test_sound_page_lists_the_original_first_then_uses_by_views() -> None:
    exp = make_experiment(SONG)
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    cols = {"author": np.array([1, 2, 3, 4]), "topic": np.zeros(4, int), "quality": np.zeros(4),
            "authenticity": np.ones(4), "length_s": np.full(4, 30.0)}
    ids = add(sim, cols, 0.0)
    (sound,) = sounds.release_sounds(sim.sound_state, sim.posts, ids[:1], 0.0)
    sim.posts.cols["sound"][ids[1:]] = sound
    sim.posts.cols["views"][ids] = [1, 5, 50, 7]  # the original has the fewest views, yet comes first
    page = sounds.sound_pages(sim.sound_state, sim.posts, np.array([sound, sound]))
    assert page.shape == (2, SOUND_PAGE_WIDTH)
    assert list(page[0, :5]) == [ids[0], ids[2], ids[3], ids[1], -1]


def test_a_tapped_sound_opens_its_page_ahead_of_the_ranker() -> None:
    # Every view opens the sound's page; derivatives give the pages posts the viewer has not seen.
    exp = make_experiment(SONG, {"behavior": {"sound_tap_intercept": 30.0, "derivative_intercept": -4.0,
                                              "derivative_delay_hours": 0.2, "derivative_at_posting": False}})
    sim = run_simulation(exp, "follower")
    assert sim.recorder.channel_counts[SOUND] > 0

    # The order, on a hand-made sound: viewer 7 tapped it, viewer 8 did not.  The page (the
    # original, then its uses by views) comes first, then the ranker's slate, without repeats.
    sim = Simulation(exp, spec_of(exp, "follower"), 0)
    ids = add(sim, {"author": np.arange(1, 6), "topic": np.zeros(5, int), "quality": np.zeros(5),
                    "authenticity": np.ones(5), "length_s": np.full(5, 30.0)})
    (sound,) = sounds.release_sounds(sim.sound_state, sim.posts, ids[:1], 0.0)
    sim.posts.cols["sound"][ids[1:3]] = sound
    sim.posts.cols["views"][ids[:3]] = [1, 9, 4]
    sim.sound_state.tapped[7] = sound
    ranked = np.array([[ids[3], ids[1], ids[4], -1], [ids[3], ids[4], -1, -1]])
    slate = sounds.open_sound_pages(sim.sound_state, sim.platform, np.array([7, 8]),
                                    Slate(ranked.copy(), np.full(ranked.shape, FOLLOWING, np.int8)))
    assert exp.behavior.sound_page_posts == 3
    assert list(slate.post_ids[0]) == [ids[0], ids[1], ids[2], ids[3]]
    assert list(slate.channel[0]) == [SOUND, SOUND, SOUND, FOLLOWING]
    assert list(slate.post_ids[1]) == list(ranked[1]) and (slate.channel[1] == FOLLOWING).all()
    assert sim.sound_state.tapped[7] == -1  # opened once

    # A page does not show its viewer their own use of the sound: user 2 made ids[1].
    sim.sound_state.tapped[2] = sound
    own = np.array([[ids[3], ids[4], -1, -1]])
    slate = sounds.open_sound_pages(sim.sound_state, sim.platform, np.array([2]),
                                    Slate(own.copy(), np.full(own.shape, FOLLOWING, np.int8)))
    assert list(slate.post_ids[0]) == [ids[0], ids[2], ids[3], ids[4]]


# --------------------------------------------------------------------------- commerce


def test_restocks_refill_stock_after_each_sellout() -> None:
    exp = make_experiment(SCENARIO, {
        "world": {"products": [{"name": "cream", "seller": "seller", "inventory": 3, "restock_units": 2,
                                "restock_hours": 0.5}]},
        "behavior": {"purchase_intercept": 4.0}})
    sim = run_simulation(exp, "content")
    products = sim.world.products
    assert products.restocks[0] >= 2 and products.sellouts[0] >= 2
    assert products.sold[0] == 3 + 2 * products.restocks[0] - products.inventory[0]
    assert products.sold_by_channel[0].sum() == products.sold[0]
    assert 0 <= products.sold_non_follower[0] <= products.sold[0]
    series = sim.recorder.tables["timeseries"].to_pydict()
    def timeline(metric: str) -> list[float]:
        return [v for e, k, v in zip(series["entity"], series["metric"], series["value"], strict=True)
                if e == "cream" and k == metric]

    assert min(timeline("inventory")) >= 0
    assert timeline("restocks")[-1] == products.restocks[0] and timeline("restocks") == sorted(timeline("restocks"))
    m = measures(sim)
    assert m[("products", "all", "sellouts")] == products.sellouts[0]
    assert m[("products", "all", "restocks")] == products.restocks[0]


def test_the_comment_slope_is_conversion_per_view_against_log_comments_of_seen_product_posts() -> None:
    exp = make_experiment(SCENARIO, {
        "world": {"accounts": [{"name": "seller", "followers": 20, "topic": "#beautytok", "posting_rate": 48.0,
                                "quality_quantile": 0.95, "product": "cream"}],
                  "products": [{"name": "cream", "seller": "seller", "inventory": 400}]},
        "horizon_days": 1.0})
    sim = run_simulation(exp, "content")
    p = sim.posts
    seen = (p.product >= 0) & (p.views_in_stock >= 50)
    assert seen.sum() >= 3 and len(np.unique(p.comments[seen])) >= 2
    assert (p.views_in_stock <= p.views).all() and (p.views_in_stock[p.product < 0] == 0).all()
    # The stock ran out: posts seen mostly after it count by their views in stock, not all their views.
    assert sim.world.products.sold[0] == 400 and seen.sum() < ((p.product >= 0) & (p.views >= 50)).sum()
    expected = np.polyfit(np.log1p(p.comments[seen]), p.purchases[seen] / p.views_in_stock[seen], 1)[0]
    m = measures(sim)
    assert m[("products", "all", "product_posts")] == seen.sum()
    assert m[("products", "all", "conversion_comment_slope")] == pytest.approx(expected)


def test_sales_through_for_you_reach_non_followers() -> None:
    exp = make_experiment(SCENARIO, {"behavior": {"purchase_intercept": -1.0}})
    m = measures(run_simulation(exp, "content"))
    assert m[("product", "cream", "sold")] == 4
    assert m[("product", "cream", "sold_for_you")] + m[("product", "cream", "sold_following")] \
        + m[("product", "cream", "sold_sound")] + m[("product", "cream", "sold_other")] == 4


# --------------------------------------------------------------------------- bought engagement


def test_bought_followers_leave_every_real_user_unchanged() -> None:
    plain = make_experiment(SCENARIO)
    bought = parse(apply_overrides(plain._table, {"world.accounts[0].bought_followers": 200}, "t"), "t")  # type: ignore[attr-defined]
    a, b = (build_world(e, Simulation(e, e.rankers[0], 0).rngs["world"]) for e in (plain, bought))
    n = a.users.n
    assert b.users.n == n + 200 and not b.users.active[n:].any()
    for name in ("interest", "attention_s", "active_share", "posting_rate", "skill", "polish_sensitivity"):
        assert np.array_equal(getattr(a.users, name), getattr(b.users, name)[:n]), name
    uid = a.accounts["seller"]
    assert b.accounts["seller"] == uid
    assert b.follower_counts[uid] == a.follower_counts[uid] + 200
    # The same arrivals: bought followers never open the app.
    sa, sb = Simulation(plain, plain.rankers[0], 0), Simulation(bought, bought.rankers[0], 0)
    for now in (0.0, 60.0, 120.0):
        ua, secs_a = draw_sessions(sa.arrivals, sa.platform, now, sa.rngs["arrivals"])
        ub, secs_b = draw_sessions(sb.arrivals, sb.platform, now, sb.rngs["arrivals"])
        assert np.array_equal(ua, ub) and np.array_equal(secs_a, secs_b)


def test_planted_accounts_post_from_t0_so_the_planted_following_holds_when_the_scenario_starts() -> None:
    # A prolific, excellent creator: posting during the 2 h warm-up it gained 14 followers by t = 0.
    busy = {"world": {"accounts": [{"name": "seller", "followers": 20, "topic": "#beautytok",
                                    "posting_rate": 48.0, "quality_quantile": 0.999}]}}
    exp = make_experiment(SCENARIO, busy, {"horizon_days": 0.125})
    sim = run_simulation(exp, "content")
    uid = sim.world.accounts["seller"]
    created = sim.posts.created_at[sim.posts.author == uid]
    assert len(created) > 0 and created.min() >= 0.0
    m = measures(sim)
    assert m[("account", "seller", "followers_start")] == 20


def test_bought_likes_are_visible_but_pools_score_real_engagement_only() -> None:
    sim, ids = content_sim_with_two_posts(SCENARIO)
    sim.posts.cols["bought_likes"][ids[1]] = 10_000
    n = 40
    fb = Feedback(user=np.arange(n), post=np.repeat(ids, n // 2), channel=np.full(n, 10, np.int8),
                  position=np.zeros(n, np.int32), watch_fraction=np.full(n, 0.5, np.float32),
                  completed=np.zeros(n, bool), liked=np.tile([True, False], n // 2), commented=np.zeros(n, bool),
                  shared=np.zeros(n, bool), followed=np.zeros(n, bool), purchased=np.zeros(n, bool))
    sim.ranker.observe(fb)
    assert sim.ranker.stage_sum[ids[0]] == sim.ranker.stage_sum[ids[1]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("ranker", ["content", "follower"])
def test_a_purchase_that_nobody_reads_changes_no_draw(ranker: str) -> None:
    """With social proof off (likes, follows, purchases) and the pools' discount off, no mechanism
    reads bought followers and likes: the world with the purchase is the world without it, post for
    post.  (The follow graph's fitness floor once averaged posting rates over the bought followers
    too, so every paired world of cant_cheat started from a different graph.)"""
    def world(bought: bool) -> Experiment:
        return make_experiment(SCENARIO, {
            "horizon_days": 0.1,
            "behavior": {"like_social_proof": 0.0, "follow_social_proof": 0.0, "purchase_social_proof": 0.0},
            "world": {"accounts": [{"name": "seller", "followers": 20, "topic": "#beautytok",
                                    "bought_followers": 2000 if bought else 0}]},
            "events": [{"name": "video", "account": "seller", "at_hours": 0.5, "quality_quantile": 0.99,
                        "product": "cream", "bought_likes": 1000 if bought else 0}],
            "rankers": [{"name": "content", "params": {"like_conformity": 0.0, "follow_conformity": 0.0}},
                        {"name": "follower"}],
        })

    without, with_ = (run_simulation(world(b), ranker) for b in (False, True))
    n = without.exp.world.users
    graph = without.world.follows.tocsr()[:n, :n], with_.world.follows.tocsr()[:n, :n]
    assert (graph[0] != graph[1]).nnz == 0
    assert with_.world.follows.tocsr()[:, without.world.accounts["seller"]].sum() == 20 + 2000
    for column in ("author", "created_at", "views", "likes", "comments", "shares"):
        assert np.array_equal(without.posts.cols[column], with_.posts.cols[column]), column
    assert without.posts.cols["views"].sum() > 0


def test_pools_credit_a_like_and_a_follow_as_if_no_count_had_been_shown() -> None:
    # Two posts, one liked-and-followed impression each: the first seen with 0 likes by an author of 0
    # followers, the second with 999 likes by an author of 99 followers. Only the reactions' credit differs:
    # 1000 ** -like_conformity of a like and 100 ** -follow_conformity of a follow.
    sim, ids = content_sim_with_two_posts(SCENARIO)
    p = sim.ranker.params  # type: ignore[attr-defined]
    before = sim.ranker.stage_sum[ids].copy()  # type: ignore[attr-defined]
    ones = np.ones(2, bool)
    fb = Feedback(user=np.arange(2), post=ids, channel=np.full(2, 10, np.int8), position=np.zeros(2, np.int32),
                  watch_fraction=np.zeros(2, np.float32), completed=~ones, liked=ones, commented=~ones,
                  shared=~ones, followed=ones, purchased=~ones, shown_likes=np.array([0, 999]),
                  shown_followers=np.array([0, 99]))
    sim.ranker.observe(fb)
    gained = sim.ranker.stage_sum[ids] - before  # type: ignore[attr-defined]
    assert gained[0] == pytest.approx(p.w_like + p.w_follow)
    assert gained[1] == pytest.approx(p.w_like * 1000.0**-p.like_conformity + p.w_follow * 100.0**-p.follow_conformity)


def test_social_proof_raises_likes_and_follows() -> None:
    b = BehaviorConfig()
    rng = np.random.default_rng(0)
    m = 200_000
    ones = np.ones(m)
    low = behavior.reactions(b, 0.6 * ones, 0 * ones, 0 * ones, 0 * ones, 0 * ones, rng)
    high = behavior.reactions(b, 0.6 * ones, 0 * ones, 0 * ones, np.log1p(1e4) * ones, np.log1p(1e5) * ones, rng)
    assert high.liked.mean() > 1.5 * low.liked.mean()
    assert high.follow_intent.mean() > 1.3 * low.follow_intent.mean()


def test_shown_counts_are_read_against_the_viewers_recent_feed() -> None:
    b = BehaviorConfig()
    shown = np.array([0, 99, 99, 9999])
    reference = np.array([np.log1p(99), np.log1p(99), np.nan, np.log1p(99)], np.float32)
    proof = behavior.shown_proof(b, shown, reference)
    # A count as the feed usually shows is no proof either way, nor is the first count ever seen.
    assert proof == pytest.approx([-np.log1p(99), 0.0, 0.0, np.log1p(9999) - np.log1p(99)], abs=1e-6)
    absolute = behavior.shown_proof(BehaviorConfig(proof_reference=0.0), shown, reference)
    assert absolute == pytest.approx(np.log1p(shown))


# --------------------------------------------------------------------------- polish


def polished_run(authenticity: float, sensitivity: float) -> Simulation:
    """A tiny content-ranker world where a planted account posts at 96 a day (fewer at night) and once as a
    scenario event, all at the given authenticity, before an audience of the given polish sensitivity."""
    exp = make_experiment({"world": {"polish_sensitivity_mean": sensitivity,
                                     "accounts": [{"name": "celebrity", "followers": 100, "topic": "#beautytok",
                                                   "posting_rate": 96.0, "authenticity": authenticity}]},
                           "events": [{"name": "ad", "account": "celebrity", "at_hours": 0.5,
                                       "authenticity": authenticity}],
                           "recording": {"impression_sample_rate": 1.0}})
    return run_simulation(exp, "content")


def test_with_polish_sensitivity_zero_polish_changes_nothing() -> None:
    outcomes = ("views", "likes", "comments", "shares", "follows", "completions", "watch_s")

    def differs(sensitivity: float) -> list[str]:
        real, retouched = polished_run(1.0, sensitivity), polished_run(0.05, sensitivity)
        for sim, authenticity in ((real, 1.0), (retouched, 0.05)):
            mine = sim.posts.author == sim.world.accounts["celebrity"]
            assert mine.sum() > 3 and (sim.posts.authenticity[mine] == np.float32(authenticity)).all()
        # Arrays of different lengths (a post more or less, e.g. a derivative) count as changed.
        changed = [c for c in outcomes if not np.array_equal(real.posts.cols[c], retouched.posts.cols[c])]
        views = [sim.recorder.tables["impressions"].column(c).to_numpy() for sim in (real, retouched)
                 for c in ("user_id", "post_id", "watch_fraction")]
        if not all(np.array_equal(a, b) for a, b in zip(views[:3], views[3:], strict=True)):
            changed.append("impressions")
        return changed

    assert differs(0.0) == []  # an audience that does not mind polish: every view and reaction the same
    assert "impressions" in differs(1.0)  # the control: the same retouching costs views when it minds


# --------------------------------------------------------------------------- configuration and summaries


def test_list_index_overrides_address_one_table() -> None:
    table = {"world": {"accounts": [{"name": "a"}, {"name": "b"}]}}
    out = apply_overrides(table, {"world.accounts[1].followers": 5}, "x.toml")
    assert out["world"]["accounts"][1] == {"name": "b", "followers": 5}
    assert "followers" not in out["world"]["accounts"][0]
    with pytest.raises(ConfigError, match=r"x.toml: --set world.accounts\[2\].followers: accounts\[2\]: no such entry"):
        apply_overrides(table, {"world.accounts[2].followers": 5}, "x.toml")


def test_a_listening_account_needs_topics() -> None:
    with pytest.raises(ConfigError, match=r"world.accounts\[0\].listen_rate: a listening account needs 'topics'"):
        make_experiment({"world": {"accounts": [{"name": "a", "followers": 1, "topic": "#crafttok",
                                                 "listen_rate": 1.0}]}})


def test_baseline_point_must_name_a_sweep_point() -> None:
    with pytest.raises(ConfigError, match="baseline_point: 3 is not a sweep point"):
        make_experiment({"baseline_point": 3, "sweep": {"world.homophily": [0.5, 0.7]}})
    with pytest.raises(ConfigError, match="baseline_point: 0 is not a sweep point"):
        make_experiment({"baseline_point": 0})


def test_point_differences_are_paired_by_replicate() -> None:
    base = [10.0, 100.0, 1000.0, 30.0, 300.0]  # five replicates: the fewest an interval is given for
    runs = {"ranker": ["a"] * 10, "replicate": [0, 1, 2, 3, 4] * 2, "point": [0] * 5 + [1] * 5,
            "reach": base + [1.2 * v for v in base]}
    out = summarise(runs, ["a"], None, np.random.default_rng(0), groups=["point"], base_point=0)
    row = out["point"].index(1)
    assert out["point_rel_mean"][row] == pytest.approx(0.2)
    assert out["point_rel_ci_low"][row] == pytest.approx(0.2)  # every replicate +20%: no spread
    assert out["point_diff_mean"][row] == pytest.approx(sum(0.2 * v for v in base) / 5)
    assert out["point_rel_mean"][out["point"].index(0)] == pytest.approx(0.0)


def test_the_planted_accounts_measure_pools_every_planted_account() -> None:
    accounts = [{"name": name, "followers": 15, "topic": topic, "posting_rate": 24.0}
                for name, topic in [("a", "#crafttok"), ("b", "#planttok"), ("c", "#booktok")]]
    m = measures(run_simulation(make_experiment({"horizon_days": 0.25, "world": {"accounts": accounts}}),
                                "content"))
    assert m["accounts", "planted", "planted"] == 3
    assert m["accounts", "planted", "views"] == sum(m["account", n, "views"] for n in "abc") > 0
    assert m["accounts", "planted", "followers_end"] == sum(m["account", n, "followers_end"] for n in "abc")


def test_measures_reach_the_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    exp = make_experiment(SONG, {"horizon_days": 0.1, "world": {"users": 1500}})
    runner = Runner(exp, tmp_path, jobs=1)
    runner.run(plan(runner.points))
    summary = pq.read_table(tmp_path / "summary.parquet").to_pydict()
    assert "account.artist.follower_growth" in summary["metric"]
    assert "sound.anthem.unique_listeners" in summary["metric"]


# --------------------------------------------------------------------------- ranker surfaces


def test_follower_suggestions_are_unseen_unfollowed_and_most_popular_first() -> None:
    exp = make_experiment({"rankers": [{"name": "follower", "params": {"suggested_posts": 6}}]})
    sim = run_simulation(exp, "follower")
    ranker, st = sim.ranker, sim.state
    users = np.arange(0, 3000, 7)
    row, post, popularity = ranker.suggestions(users, sim.env.now)  # type: ignore[attr-defined]
    assert len(row) > 0.3 * 6 * len(users)
    viewer = users[row]
    author = st.posts.author[post].astype(np.int64)
    assert not st.is_following(viewer, author).any()
    assert (author != viewer).all()
    assert not st.seen.contains(viewer, post).any()
    assert len(set(zip(row.tolist(), post.tolist(), strict=True))) == len(row)  # no repeats per user
    for r in np.unique(row)[:50]:
        mine = popularity[row == r]
        assert (np.diff(mine) <= 0).all()
    assert sim.recorder.channel_counts[4] > 0  # suggestions were served (channel "other")


@pytest.mark.parametrize("gate", [True, False])
def test_follow_slots_skip_followed_posts_below_their_stage_mean(gate: bool) -> None:
    # Followers of authors 5 and 6 get every slot offered to a followed account (follow_share 1);
    # 5's post scores above the stage-0 mean, 6's below.
    sim, ids = content_sim_with_two_posts(SONG, {"rankers": [{"name": "content", "params": {
        "follow_share": 1.0, "follow_gate": gate}}]})
    ranker = sim.ranker
    ranker.history[0] = np.full(100, 5.0)  # type: ignore[attr-defined]  # stage-0 mean score 5
    ranker.stage_n[ids] = 200  # type: ignore[attr-defined]  # short of the stage's quota: no decision
    ranker.stage_sum[ids] = [200 * 8.0, 200 * 2.0]  # type: ignore[attr-defined]  # above / below the mean
    assert ranker.review(0.0) is None
    fans = np.arange(100, 400)
    sim.state.add_follows(np.repeat(fans, 2), np.tile([5, 6], len(fans)))
    sim.state.merge_follows()
    slate = ranker.rank(fans, 0.0, 8)
    followed = slate.post_ids[(slate.channel == FOLLOWING) & (slate.post_ids >= 0)]
    assert (followed == ids[0]).sum() > 10
    if gate:  # the post below its stage's mean never fills a follow slot
        assert ids[1] not in followed
    else:
        assert (followed == ids[1]).sum() > 10


def test_a_seen_pool_post_sends_the_slot_to_interest_retrieval() -> None:
    # Topic 0 holds 40 posts out of the pools and two in stage 0, both already seen by a viewer
    # whose only interest is topic 0.  Every slot draws a pool post of topic 0 (no retrieval
    # share, no exploration, no follow slots, no uniform refill).
    params = {"retrieval_share": 0.0, "explore_share": 0.0, "follow_share": 0.0, "fallback_oversample": 0,
              "refill_rounds": 0}
    exp = make_experiment({"rankers": [{"name": "content", "params": params}]})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    ranker, st = sim.ranker, sim.state
    ranker.start(st)
    post = {"topic": np.zeros(40, int), "quality": np.zeros(40), "authenticity": np.ones(40),
            "length_s": np.full(40, 30.0)}
    old = add(sim, {"author": np.arange(100, 140), **post}, 0.0)
    ranker.review(0.0)
    ranker.stage[old] = -1  # type: ignore[attr-defined]  # out of the pools (retired)
    pool = add(sim, {"author": np.array([5, 6]), **{k: v[:2] for k, v in post.items()}}, 0.0)
    ranker.review(0.0)
    viewer = 0
    st.interest_cum[viewer] = 1.0  # all interest in topic 0
    st.affinity[viewer] = 0.0
    st.affinity[viewer, 0] = 1.0
    st.seen.add(np.full(2, viewer), pool)
    slate = ranker.rank(np.array([viewer]), 0.0, 8)
    shown = slate.post_ids[0][slate.post_ids[0] >= 0]
    # Each miss went to retrieval: a full slate of topic-0 posts out of the pools.
    assert len(shown) == 8 and set(shown) <= set(old.tolist())
    assert (slate.channel[0] == EXPLORE).all()


# --------------------------------------------------------------------------- creators


def test_a_listening_creator_moves_toward_the_topic_its_audience_rewarded() -> None:
    exp = make_experiment({"world": {"accounts": [
        {"name": "maker", "followers": 10, "topic": "#crafttok", "topics": ["#crafttok", "#planttok"],
         "listen_rate": 2.0}]}})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    uid = sim.world.accounts["maker"]
    craft, plant = sim.world.topics.index("#crafttok"), sim.world.topics.index("#planttok")
    assert sim.listening.topic_mix[uid][craft] == sim.listening.topic_mix[uid][plant] == 1.0  # evenly at first
    ids = add(sim, {"author": np.full(4, uid), "topic": np.array([craft, plant, craft, plant]),
                    "quality": np.zeros(4), "authenticity": np.ones(4), "length_s": np.full(4, 30.0)}, 0.0)
    cols = sim.posts.cols
    cols["views"][ids] = 100
    cols["likes"][ids] = [12, 2, 10, 3]  # the audience rewards the craft posts
    before = sim.listening.topic_mix[uid] / sim.listening.topic_mix[uid].sum()
    listening.listen(sim.listening, sim.posts, uid, 23 * 3600.0)
    mix = sim.listening.topic_mix
    assert (mix[uid] / mix[uid].sum() == before).all()  # too soon: read at a day old
    listening.listen(sim.listening, sim.posts, uid, 24 * 3600.0)
    after = sim.listening.topic_mix[uid] / sim.listening.topic_mix[uid].sum()
    assert after[craft] > before[craft] and after[plant] < before[plant]
    listening.listen(sim.listening, sim.posts, uid, 30 * 3600.0)
    assert (sim.listening.topic_mix[uid] / sim.listening.topic_mix[uid].sum() == after).all()  # each post is read once
    assert after[[t for t in range(len(after)) if t not in (craft, plant)]].sum() == 0  # only its own topics


def test_a_listening_creator_moves_toward_the_format_its_audience_rewarded() -> None:
    formats = ["tutorial", "story", "behind_the_scenes"]
    accounts = [{"name": name, "followers": 10, "topic": "#crafttok", "topics": ["#crafttok", "#planttok"],
                 "posting_rate": 24.0, "listen_rate": 1.0, "quality_quantile": 0.5} for name in ("maker", "other")]
    exp = make_experiment({"world": {"formats": formats, "accounts": accounts}})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    uid = sim.world.accounts["maker"]
    assert set(sim.format_mix) == set(sim.world.format_fit) == set(sim.world.accounts.values())
    assert (sim.format_mix[uid] == 1.0).all() and sim.world.format_fit[uid].shape == (3,)
    ids = add(sim, {"author": np.full(3, uid), "topic": np.zeros(3, np.int64), "quality": np.zeros(3),
                    "authenticity": np.ones(3), "length_s": np.full(3, 30.0),
                    "format": np.array([0, 1, 2], np.int16)}, 0.0)
    add(sim, {"author": np.full(1, uid), "topic": np.zeros(1, np.int64), "quality": np.zeros(1),
              "authenticity": np.ones(1), "length_s": np.full(1, 30.0)}, 0.0)  # a scenario post: no format
    sim.posts.cols["likes"][ids] = [40, 4, 4]  # the audience rewards the tutorial
    listening.listen(sim.listening, sim.posts, uid, 24 * 3600.0)
    mix = sim.format_mix[uid]
    assert mix[0] > 2 * mix[1] and mix[1] == mix[2]

    # Background posts take their format from the mix, and the format's fit adds to their quality.
    sim.run()
    p = sim.posts
    mine = np.flatnonzero((p.author == uid) & (p.created_at > 0))
    assert len(mine) > 0 and (p.format[mine] >= 0).all()
    fit = sim.world.topic_fit[uid][p.topic[mine]] + sim.world.format_fit[uid][p.format[mine]]
    np.testing.assert_allclose(p.quality[mine], fit, atol=1e-6)  # a median creator plus its fits
    assert (p.format[(p.author != uid) & (p.author != sim.world.accounts["other"])] == -1).all()


def test_a_listening_creator_reads_every_post_once_however_often_it_posts() -> None:
    accounts = [{"name": "busy", "followers": 10, "topic": "#crafttok", "topics": ["#crafttok", "#planttok"],
                 "posting_rate": 24.0, "listen_rate": 1.0}]  # three times the author ring a day
    sim = run_simulation(make_experiment({"horizon_days": 2.0, "world": {"accounts": accounts}}), "content")
    uid = sim.world.accounts["busy"]
    p = sim.posts
    made = np.flatnonzero(p.author == uid)
    read, unread = sim.listening.posts_read[uid], sim.listening.unread[uid]
    assert read + len(unread) == len(made) and len(set(unread.tolist())) == len(unread)
    assert (p.created_at[unread] > p.created_at[made].max() - 25 * 3600.0).all()  # only the last day's wait
    assert read >= (p.created_at[made] < sim.exp.horizon_s - 26 * 3600.0).sum() > 12


def test_a_huge_advantage_does_not_overflow_the_mix() -> None:
    mix = shift_mix(np.array([1.0, 1.0, 0.0, 1.0]), np.zeros(8, np.int64), np.full(8, 95.0))
    assert np.isfinite(mix).all() and mix[2] == 0.0 and mix[0] > 0.99 and mix[1] == mix[3] == 1e-3
    mix = shift_mix(mix, np.ones(8, np.int64), np.full(8, -400.0))
    assert np.isfinite(mix).all() and mix[0] > 0.99 and mix[1] == 1e-3


def test_a_world_without_formats_draws_nothing_for_them() -> None:
    accounts = [{"name": "maker", "followers": 10, "topic": "#crafttok", "topics": ["#crafttok", "#planttok"]}]
    plain = make_experiment({"world": {"accounts": accounts}})
    sim = Simulation(plain, spec_of(plain, "content"), 0)
    assert sim.world.format_fit == {} and sim.format_mix == {}
    with_formats = make_experiment({"world": {"accounts": accounts, "formats": ["tutorial", "story"]}})
    other = Simulation(with_formats, spec_of(with_formats, "content"), 0)
    assert np.array_equal(sim.world.topic_fit[sim.world.accounts["maker"]],
                          other.world.topic_fit[other.world.accounts["maker"]])  # drawn after, not instead


def test_listening_measures_compare_views_per_post_overall_and_late() -> None:
    topics = ["#crafttok", "#planttok"]
    accounts = [{"name": name, "followers": 10, "topic": "#crafttok", "topics": topics, "posting_rate": 16.0,
                 "listen_rate": rate} for name, rate in [("ear", 1.0), ("deaf", 0.0)]]
    # Derivatives are common here, so that the steady account's own ones (kept as they were by
    # best_fit_ratio) are part of the check.
    exp = make_experiment({"horizon_days": 1.5, "behavior": {"derivative_intercept": -6.0,
                                                             "derivative_at_posting": False},
                           "world": {"accounts": accounts}})
    sim = run_simulation(exp, "content")
    m = measures(sim)
    p = sim.posts
    day = 86_400.0

    def per_post(name: str, start: float, end: float) -> float:
        own = (p.author == sim.world.accounts[name]) & (p.created_at >= start) & (p.created_at < end)
        assert own.sum() > 3
        return float(p.views[own].sum() / own.sum())

    late = (0.0, 0.5 * day)  # the last week (all of it here) less the last day
    assert m["listening", "creators", "listener_views_per_post"] == per_post("ear", 0.0, np.inf)
    assert m["listening", "creators", "steady_views_per_post_late"] == per_post("deaf", *late)
    assert m["listening", "creators", "ratio_late"] == pytest.approx(per_post("ear", *late) / per_post("deaf", *late))
    deaf = sim.world.accounts["deaf"]
    fit = sim.world.topic_fit[deaf][[sim.world.topics.index(t) for t in topics]]
    own = p.author == deaf
    drawn = own & (p.event < 0) & (p.parent < 0)  # its derivatives keep the views they had
    best = drawn & (p.topic == sim.world.topics.index(topics[int(np.argmax(fit))]))
    assert best.sum() > 3 and drawn.sum() > best.sum() and own.sum() > drawn.sum()
    if_best = (p.views[own].sum() - p.views[drawn].sum() + drawn.sum() * p.views[best].mean()) / own.sum()
    assert m["listening", "creators", "steady_best_views_per_post"] == pytest.approx(if_best)
    assert m["listening", "creators", "best_fit_ratio"] == pytest.approx(if_best / per_post("deaf", 0.0, np.inf))


def test_users_who_engage_enough_with_a_topic_start_posting_in_it() -> None:
    exp = make_experiment({"behavior": {"inspire_rate": 1.0, "inspire_engagements": 5}})
    sim = Simulation(exp, spec_of(exp, "content"), 0)
    n = sim.users.n
    fans = np.arange(0, n, 3)
    fans = fans[sim.users.posting_rate[fans] < exp.behavior.inspired_posting_rate]
    sim.inspiration.topic_engagement[fans, 2] = 5
    sim.inspiration.topic_engagement[fans + 1, 1] = 4  # below the threshold: never inspired
    for _ in range(40):
        inspiration.inspire(sim.inspiration, sim.platform, 0.0, sim.rngs["behavior"])
    inspired = np.flatnonzero(sim.inspired_topic >= 0)
    assert set(inspired) <= set(fans) and len(inspired) > 0.9 * len(fans)
    assert (sim.inspired_topic[inspired] == 2).all()
    before = len(sim.posts)
    for tick in range(200):
        drawn = inspiration.draw_inspired_posts(sim.inspiration, sim.platform, 60.0 * tick, sim.rngs["behavior"])
        if drawn is not None:
            posting.publish(sim.platform, sim.listening, sim.sound_state, *drawn, 60.0 * tick)
    new = np.arange(before, len(sim.posts))
    assert len(new) > 0 and (sim.posts.topic[new] == 2).all() and np.isin(sim.posts.author[new], inspired).all()


def test_an_adopted_sound_reaches_listeners_through_other_creators_posts(duet_run: Simulation) -> None:
    m = measures(duet_run)
    assert m[("sound", "anthem", "derivatives_by_others")] > 0
    assert 0 < m[("sound", "anthem", "listeners_via_others_share")] < 1
    assert duet_run.listeners_via_artist[0] < duet_run.listened[0].sum()


def test_highlights_are_plotted_first_and_presentation_keys_do_not_change_the_config_hash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sim.batch.runner import config_hash
    from sim.report import build

    change = {"horizon_days": 0.1, "world": {"users": 1500}}
    exp = make_experiment(SONG, change, {"highlights": ["account.artist.follower_growth"]})
    assert config_hash(exp) == config_hash(make_experiment(SONG, change))
    assert config_hash(exp) == config_hash(make_experiment(SONG, change, {"description": "Reworded."}))
    assert config_hash(exp) != config_hash(make_experiment(SONG, change, {"seed": 12}))
    runner = Runner(exp, tmp_path, jobs=1)
    runner.run(plan(runner.points))
    report = build(tmp_path).read_text()
    assert (tmp_path / "plots" / "highlight_account_artist_follower_growth.png").exists()
    table = report[report.index("## Scenario measures"):]
    first_row = next(line for line in table.splitlines() if line.startswith("| `"))
    assert "account.artist.follower_growth" in first_row


def test_account_measures_count_followers_from_t0_not_from_the_merged_graph() -> None:
    exp = make_experiment(SONG, {"behavior": {"follow_intercept": -3.0}})  # follows are common
    sim = run_simulation(exp, "content")
    m = measures(sim)
    series = sim.recorder.tables["timeseries"].to_pydict()
    at_zero = [v for h, e, k, v in zip(series["time_h"], series["entity"], series["metric"], series["value"],
                                       strict=True) if e == "artist" and k == "followers" and h == 0.0]
    assert m[("account", "artist", "followers_built")] == 10
    assert m[("account", "artist", "followers_start")] == at_zero[0]
    assert m[("account", "artist", "followers_end")] > m[("account", "artist", "followers_start")]
    assert m[("account", "artist", "follower_growth")] == pytest.approx(
        m[("account", "artist", "followers_end")] / m[("account", "artist", "followers_start")])


def test_pooled_conversion_slope_recovers_a_known_slope_and_resamples_replicates() -> None:
    import pyarrow as pa

    from sim.report import pooled_conversion_slope

    rng = np.random.default_rng(1)
    n = 400
    views = rng.integers(60, 5000, n)
    in_stock = views - rng.integers(0, 10, n)  # views after a sell-out cannot convert
    in_stock[:20] = 40  # seen by many, but mostly while sold out: left out
    in_stock[200:] //= 2  # sold out half the time: conversion counts only the views that could buy
    comments = rng.binomial(views, rng.uniform(0.001, 0.02, n))
    purchases = rng.binomial(in_stock, 0.001 + 0.002 * np.log1p(comments))  # conversion while in stock
    posts = pa.table({"ranker": ["content"] * n, "replicate": np.repeat(np.arange(8), n // 8),
                      "product": ["soap"] * (n - 10) + [None] * 10, "views": views, "views_in_stock": in_stock,
                      "comments": comments, "purchases": purchases})
    slope, lo, hi, used = pooled_conversion_slope(posts, "content", seed=3)
    assert used == n - 10 - 20
    assert 0 < lo < slope < hi and 0.0014 < slope < 0.0026  # true slope 0.002
    # Results written before views_in_stock existed (the column filled with nulls) use all views.
    older = posts.set_column(posts.schema.get_field_index("views_in_stock"), "views_in_stock",
                             pa.nulls(n, pa.int32()))
    assert pooled_conversion_slope(older, "content", seed=3)[3] == n - 10
    assert (slope, lo, hi) == pooled_conversion_slope(posts, "content", seed=3)[:3]  # seeded


def test_the_posts_table_names_each_posts_format() -> None:
    accounts = [{"name": "maker", "followers": 10, "topic": "#crafttok", "topics": ["#crafttok", "#planttok"],
                 "posting_rate": 24.0}]
    sim = run_simulation(make_experiment({"world": {"formats": ["tutorial", "story"], "accounts": accounts}}),
                         "content")
    posts = sim.recorder.tables["posts"].to_pydict()
    mine = [f for a, f in zip(posts["author_id"], posts["format"], strict=True) if a == sim.world.accounts["maker"]]
    others = [f for a, f in zip(posts["author_id"], posts["format"], strict=True) if a != sim.world.accounts["maker"]]
    assert mine and set(mine) <= {"tutorial", "story"} and set(others) == {None}
