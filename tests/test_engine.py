"""Whole simulations on a tiny world: conservation, monotone counters, stock, determinism,
common random numbers, and what each ranker may serve."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from conftest import SCENARIO, add_posts, hand_state, hand_world, make_experiment, run_simulation, spec_of

from sim.batch.runner import TABLES, Runner, plan
from sim.config import ConfigError, points
from sim.engine import RunStopped, Simulation
from sim.engine.arrivals import draw_sessions
from sim.rankers.base import POOL, Feedback
from sim.rankers.content import ContentParams, ContentRanker

COUNTERS = ("likes", "comments", "shares", "follows", "purchases", "completions")
CHANNEL_VIEWS = ("views_following", "views_reshare", "views_pool", "views_explore", "views_other")
LABELS = ("content", "follower")


def column(table, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return table.column(name).to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------- conservation


@pytest.mark.parametrize("label", LABELS)
def test_impressions_equal_views(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs[label]
    tables = sim.recorder.tables
    runs, posts = tables["runs"], tables["posts"]
    impressions = runs.column("impressions")[0].as_py()
    assert impressions > 1000
    # The engine counts the slots its sessions had time for; the recorder counts the Feedback rows.
    assert impressions == sim.impressions
    assert impressions == int(column(posts, "views").sum())
    assert impressions == sum(int(column(posts, c).sum()) for c in CHANNEL_VIEWS)
    # With impression_sample_rate = 1 every impression is a row.
    assert tables["impressions"].num_rows == impressions


@pytest.mark.parametrize("label", LABELS)
def test_per_post_views_by_channel_add_up(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    posts = scenario_runs[label].recorder.tables["posts"]
    by_channel = sum(column(posts, c).astype(np.int64) for c in CHANNEL_VIEWS)
    assert (by_channel == column(posts, "views")).all()


@pytest.mark.parametrize("label", LABELS)
def test_impression_rows_match_post_views(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    tables = scenario_runs[label].recorder.tables
    views = column(tables["posts"], "views")
    counted = np.bincount(column(tables["impressions"], "post_id"), minlength=len(views))
    assert (counted == views).all()


@pytest.mark.parametrize("label", LABELS)
def test_engagement_never_exceeds_views(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    posts = scenario_runs[label].recorder.tables["posts"]
    views = column(posts, "views")
    for name in COUNTERS:
        assert (column(posts, name) <= views).all(), name
        assert (column(posts, name) >= 0).all(), name
    assert (column(posts, "watch_s") <= views * column(posts, "length_s") + 1e-3).all()


@pytest.mark.parametrize("label", LABELS)
def test_no_user_sees_a_post_twice(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    imp = scenario_runs[label].recorder.tables["impressions"]
    n_users = scenario_runs[label].users.n
    keys = column(imp, "user_id") * n_users + column(imp, "post_id")
    assert len(np.unique(keys)) == len(keys)


@pytest.mark.parametrize("label", LABELS)
def test_nobody_is_shown_their_own_post(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs[label]
    imp = sim.recorder.tables["impressions"]
    author = sim.posts.author[column(imp, "post_id")]
    assert (author != column(imp, "user_id")).all()


# --------------------------------------------------------------------------- counters and stock


@pytest.mark.parametrize("label", LABELS)
def test_timeseries_counters_are_monotone(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    ts = scenario_runs[label].recorder.tables["timeseries"].to_pylist()
    series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for row in ts:
        series[(row["entity"], row["metric"])].append((row["time_h"], row["value"]))
    assert ("video", "views") in series and ("cream", "inventory") in series and ("seller", "followers") in series
    for (entity, metric), samples in series.items():
        samples.sort()
        values = np.array([v for _, v in samples])
        assert len(values) >= 5, (entity, metric)  # hourly; the post exists from 0.5 h to 6 h
        steps = np.diff(values)
        if metric == "inventory":
            assert (steps <= 0).all(), (entity, metric, values)
            assert (values >= 0).all(), (entity, metric, values)
        else:
            assert (steps >= 0).all(), (entity, metric, values)


@pytest.mark.parametrize("label", LABELS)
def test_inventory_plus_sold_is_initial(scenario_runs, scenario_experiment, label: str) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs[label]
    initial = scenario_experiment.world.products[0].inventory
    products = sim.world.products
    assert products.inventory[0] + products.sold[0] == initial
    assert products.inventory[0] >= 0
    ts = sim.recorder.tables["timeseries"].to_pylist()
    at: dict[float, dict[str, float]] = defaultdict(dict)
    for row in ts:
        if row["entity"] == "cream":
            at[row["time_h"]][row["metric"]] = row["value"]
    assert at
    for values in at.values():
        assert values["inventory"] + values["sold"] == initial


@pytest.mark.parametrize("label", LABELS)
def test_sales_are_purchases_of_the_product_post(scenario_runs, label: str) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs[label]
    posts = sim.recorder.tables["posts"]
    purchases = column(posts, "purchases")
    (focal,) = sim.recorder.tracked_ids
    assert purchases[focal] == sim.world.products.sold[0]
    assert purchases.sum() == purchases[focal]  # the only post with a product
    imp = sim.recorder.tables["impressions"]
    assert int(pc.sum(imp.column("purchased")).as_py() or 0) == purchases[focal]


def test_small_stock_sells_out_and_stays_at_zero(scenario_runs) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs["content"]
    products = sim.world.products
    assert products.inventory[0] == 0 and products.sold[0] == products.initial[0]
    focal = sim.recorder.tables["focal"].to_pylist()[0]
    (post,) = sim.recorder.tracked_ids
    expected = (products.sellout_at[0] - sim.posts.created_at[post]) / 3600.0
    assert focal["sellout_hours"] == pytest.approx(expected)
    assert focal["purchases"] == products.initial[0]
    # No purchase after the sell-out.
    imp = sim.recorder.tables["impressions"]
    bought_at = column(imp, "time_s")[column(imp, "purchased")]
    assert bought_at.max() <= products.sellout_at[0]
    # Views in stock (the denominator of conversion) are the post's views, in arrival order, up to
    # the one that bought the last unit (the only product post: its last purchase).
    bought = column(imp, "purchased")[column(imp, "post_id") == post]
    assert sim.posts.views_in_stock[post] == np.flatnonzero(bought).max() + 1 < sim.posts.views[post]


def test_planted_account_has_exactly_its_followers(scenario_runs) -> None:  # type: ignore[no-untyped-def]
    for sim in scenario_runs.values():
        focal = sim.recorder.tables["focal"].to_pylist()[0]
        assert focal["followers_initial"] == 20
        assert focal["followers_final"] >= 20


def test_promotion_decisions_follow_their_threshold(scenario_runs, scenario_experiment) -> None:  # type: ignore[no-untyped-def]
    promotions = scenario_runs["content"].recorder.tables["promotions"].to_pylist()
    assert promotions, "the content ranker reviewed no post"
    stages = spec_of(scenario_experiment, "content").params.stages
    for row in promotions:
        assert 0 <= row["stage"] < stages
        if row["threshold"] is None:
            assert not row["promoted"]
        else:
            assert row["promoted"] == (row["score"] > row["threshold"])
    assert scenario_runs["follower"].recorder.tables["promotions"].num_rows == 0


@pytest.mark.parametrize("label", LABELS)
def test_snapshots_are_hourly_and_unique(scenario_runs, scenario_experiment, label: str) -> None:  # type: ignore[no-untyped-def]
    ts = scenario_runs[label].recorder.tables["timeseries"].to_pylist()
    times = sorted({row["time_h"] for row in ts if row["entity"] == "cream" and row["metric"] == "sold"})
    start, end = -scenario_experiment.warmup_hours, scenario_experiment.horizon_days * 24
    assert times == pytest.approx(list(np.arange(start, end + 0.5, 1.0)))
    keys = [(row["entity"], row["metric"], row["time_h"]) for row in ts]
    assert len(set(keys)) == len(keys)


def test_scenario_post_counts_followers_still_in_the_append_buffer(scenario_experiment) -> None:  # type: ignore[no-untyped-def]
    # A follow made shortly before a scenario post is a follow (is_following and follower_counts
    # see it); the tracked follower list, which decides focal non_follower_share, must see it too.
    sim = Simulation(scenario_experiment, spec_of(scenario_experiment, "follower"), 0)
    seller = sim.world.accounts["seller"]
    fan = next(u for u in range(sim.users.n)
               if u != seller and not sim.state.is_following(np.array([u]), np.array([seller]))[0])
    sim.state.add_follows(np.array([fan]), np.array([seller]))
    sim.post_scenario(0, scenario_experiment.events[0], 0.0)
    (post,) = sim.recorder.tracked_ids
    followers = sim.recorder.tracked_followers[0]
    assert sim.posts.author_followers_at_post[post] == 21
    assert fan in followers
    assert len(followers) == sim.posts.author_followers_at_post[post]


def test_scenario_event_accepted_by_validation_is_posted() -> None:
    # An event at the horizon would never happen: validation rejects it.  One in the last tick
    # before the horizon passes, and must happen in the run.
    def at(hours: float) -> dict[str, object]:
        return {"world": {"users": 400}, "horizon_days": 0.125, "warmup_hours": 0.5,
                "events": [{"name": "video", "account": "seller", "at_hours": hours, "product": "cream"}],
                "rankers": [{"name": "follower"}]}

    with pytest.raises(ConfigError, match=r"events\[0\]\.at_hours: 3\.0 h is not before the horizon"):
        make_experiment(SCENARIO, at(3.0))
    exp = make_experiment(SCENARIO, at(3.0 - 30.0 / 3600.0))
    sim = run_simulation(exp, "follower")
    assert sim.recorder.tracked_names == ["video"]
    assert sim.recorder.tables["focal"].num_rows == 1
    (post,) = sim.recorder.tracked_ids
    assert sim.posts.created_at[post] == pytest.approx(3.0 * 3600.0 - 30.0, abs=60.0)  # within its tick


def test_bought_followers_never_watch() -> None:
    exp = make_experiment({"world": {"users": 600, "accounts": [{"name": "celebrity", "followers": 30,
                                                                  "topic": "#fashiontok", "bought_followers": 200,
                                                                  "posting_rate": 24.0}]},
                           "events": [{"name": "ad", "account": "celebrity", "at_hours": 0.5}],
                           "recording": {"impression_sample_rate": 1.0}, "rankers": [{"name": "follower"}]})
    sim = run_simulation(exp, "follower")
    assert sim.users.n == 800 and sim.users.active.sum() == 600
    assert sim.world.follower_counts[sim.world.accounts["celebrity"]] == 230
    viewers = sim.recorder.tables["impressions"].column("user_id").to_numpy()
    assert len(viewers) > 0
    assert sim.users.active[viewers].all()
    assert (sim.budget_by_day[:, ~sim.users.active] == 0).all()


# --------------------------------------------------------------------------- what the follower ranker serves


def test_follower_ranker_serves_only_followed_accounts_and_their_reshares(scenario_runs) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs["follower"]
    imp = sim.recorder.tables["impressions"]
    channel = column(imp, "channel")
    # Sound pages a viewer opened come ahead of any ranker's slate (the engine's, not the ranker's).
    assert set(channel) <= {"following", "reshare", "sound"}
    user, post = column(imp, "user_id"), column(imp, "post_id")
    following = channel == "following"
    author = sim.posts.author[post[following]].astype(np.int64)
    assert sim.state.is_following(user[following], author).all()


def test_follower_ranker_reshares_come_from_a_followee_who_shared(scenario_runs) -> None:  # type: ignore[no-untyped-def]
    sim = scenario_runs["follower"]
    imp = sim.recorder.tables["impressions"]
    user, post, time_s = column(imp, "user_id"), column(imp, "post_id"), column(imp, "time_s")
    channel, shared = column(imp, "channel"), column(imp, "shared")
    sharers: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for i in np.flatnonzero(shared):
        sharers[int(post[i])].append((float(time_s[i]), int(user[i])))
    reshare = np.flatnonzero(channel == "reshare")
    assert len(reshare) > 0, "no reshare impression: the world is too small to check the channel"
    for i in reshare:
        who = [s for t, s in sharers[int(post[i])] if t <= time_s[i]]
        assert who, f"impression {i}: reshared post {post[i]} was shared by nobody before"
        assert sim.state.is_following(np.full(len(who), user[i]), np.array(who)).any()


# --------------------------------------------------------------------------- common random numbers


def test_rankers_of_a_replicate_share_world_and_arrivals(scenario_experiment) -> None:  # type: ignore[no-untyped-def]
    a, b = (Simulation(scenario_experiment, spec, 0) for spec in scenario_experiment.rankers)
    assert (a.world.follower_counts == b.world.follower_counts).all()
    assert (a.world.follows != b.world.follows).nnz == 0
    assert a.world.accounts == b.world.accounts
    for name in ("interest", "attention_s", "active_share", "posting_rate", "skill"):
        assert np.array_equal(getattr(a.users, name), getattr(b.users, name)), name
    for tick in range(30):
        now = -scenario_experiment.warmup_s + 60.0 * tick
        users_a, seconds_a = draw_sessions(a.arrivals, a.platform, now, a.rngs["arrivals"])
        users_b, seconds_b = draw_sessions(b.arrivals, b.platform, now, b.rngs["arrivals"])
        assert np.array_equal(users_a, users_b) and np.array_equal(seconds_a, seconds_b)


def test_rankers_of_a_replicate_share_posts_and_session_budgets(scenario_runs) -> None:  # type: ignore[no-untyped-def]
    a, b = scenario_runs["content"], scenario_runs["follower"]
    # The posting stream is shared: the same posts by the same authors at the same times.  Which of
    # them use a sound their author heard (a derivative, made at posting) answers what viewers saw,
    # so it differs by ranker, and with it the post's sound and quality (pulled toward the sound's).
    assert len(a.posts) == len(b.posts) > 0
    for name in ("author", "topic", "authenticity", "length_s", "created_at", "product", "event"):
        assert np.array_equal(getattr(a.posts, name), getattr(b.posts, name)), name
    neither = (a.posts.parent < 0) & (b.posts.parent < 0)
    assert np.array_equal(a.posts.quality[neither], b.posts.quality[neither])
    # The same posts release an original sound (numbered in release order, so ids may differ).
    assert np.array_equal(a.posts.sound[neither] >= 0, b.posts.sound[neither] >= 0)
    # Same arrivals during the run: the same session budgets per user and day.
    assert np.array_equal(a.budget_by_day, b.budget_by_day)
    tracked = [(a.posts.author[i], a.posts.created_at[i]) for i in a.recorder.tracked_ids]
    assert tracked == [(b.posts.author[i], b.posts.created_at[i]) for i in b.recorder.tracked_ids]


def test_replicates_differ(scenario_experiment, scenario_runs) -> None:  # type: ignore[no-untyped-def]
    first = scenario_runs["follower"]
    second = run_simulation(scenario_experiment, "follower", replicate=1)
    assert not np.array_equal(first.world.follower_counts, second.world.follower_counts)
    assert not np.array_equal(first.budget_by_day, second.budget_by_day)
    qa, qb = first.posts.quality, second.posts.quality
    assert len(qa) != len(qb) or not np.array_equal(qa, qb)


def test_asking_whether_to_stop_changes_nothing_and_stopping_raises(scenario_experiment, scenario_runs) -> None:  # type: ignore[no-untyped-def]
    asked: list[float] = []
    sim = Simulation(scenario_experiment, spec_of(scenario_experiment, "content"), 0)
    sim.run(stop=lambda: asked.append(sim.env.now) or False)
    assert len(asked) == len(set(asked)) > 100  # once a tick
    for name, table in scenario_runs["content"].recorder.tables.items():
        assert sim.recorder.tables[name].equals(table), name

    stopping = Simulation(scenario_experiment, spec_of(scenario_experiment, "content"), 0)
    with pytest.raises(RunStopped, match=r"stopped at t = 2\.00 h"):
        stopping.run(stop=lambda: stopping.env.now >= 2 * 3600.0)


# --------------------------------------------------------------------------- determinism


def _runner_out(root: Path, name: str, jobs: int) -> Path:
    exp = make_experiment(SCENARIO, {"world": {"users": 800}, "horizon_days": 0.1, "warmup_hours": 1.0,
                                     "recording": {"impression_sample_rate": 0.05}})
    out = root / name
    outcomes = Runner(exp, out, jobs=jobs, progress=lambda line: None).run(plan(points(exp)))
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    return out


@pytest.fixture(scope="module")
def runner_outputs(tmp_path_factory) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("runner")
    return _runner_out(root, "a", 1), _runner_out(root, "b", 1), _runner_out(root, "c", 2)


def _parquet_files(out: Path) -> list[Path]:
    files = [out / f"{name}.parquet" for name in TABLES]
    files += sorted((out / "impressions").rglob("*.parquet"))
    files += sorted((out / "runs").rglob("*.parquet"))
    return files


def test_same_seed_gives_byte_identical_parquet(runner_outputs) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = runner_outputs
    files = _parquet_files(a)
    assert len(files) >= len(TABLES) + 2
    assert [f.relative_to(a) for f in files] == [f.relative_to(b) for f in _parquet_files(b)]
    for f in files:
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes(), f.relative_to(a)


def test_job_count_does_not_change_results(runner_outputs) -> None:  # type: ignore[no-untyped-def]
    a, _, c = runner_outputs
    for f in _parquet_files(a):
        assert f.read_bytes() == (c / f.relative_to(a)).read_bytes(), f.relative_to(a)


def test_rerun_into_finished_folder_skips_every_run(runner_outputs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, _, _ = runner_outputs
    exp = make_experiment(SCENARIO, {"world": {"users": 800}, "horizon_days": 0.1, "warmup_hours": 1.0,
                                     "recording": {"impression_sample_rate": 0.05}})
    before = (a / "runs.parquet").read_bytes()
    outcomes = Runner(exp, a, jobs=1, progress=lambda line: None).run(plan(points(exp)))
    assert outcomes == []
    assert (a / "runs.parquet").read_bytes() == before


# --------------------------------------------------------------------------- content ranker ignores followers


def _pool_trace(edges: tuple[tuple[int, int], ...], follow_share: float):  # type: ignore[no-untyped-def]
    """Drive a content ranker by hand on a 300-user world with the given follow graph.

    Posts, arrivals and engagement are drawn from fixed seeds that do not
    depend on the graph.  Returns every review's decisions and every slate.
    """
    n_users, n_topics = 300, 3
    st = hand_state(hand_world(n_users, edges, n_topics=n_topics, seed=1))
    world_rng = np.random.default_rng(2)
    quality = world_rng.normal(0, 1, 4000)
    params = ContentParams(follow_share=follow_share, pool_first=15, pool_growth=3, first_stage_hours=0.1,
                           min_history=5, prior_impressions=5)
    ranker = ContentRanker(params, np.random.default_rng(3))
    ranker.start(st)
    behaviour = np.random.default_rng(4)
    decisions, slates = [], []
    for tick in range(90):
        now = 60.0 * tick
        st.now = now
        if tick % 10 == 0:
            add_posts(st, world_rng.integers(0, 20, 25), now, topic=world_rng.integers(0, n_topics, 25))
        d = ranker.review(now)
        if d is not None:
            decisions.append(d)
        users = np.sort(behaviour.choice(n_users, 40, replace=False))
        slate = ranker.rank(users, now, 6)
        slates.append(slate)
        row, col = np.nonzero(slate.post_ids >= 0)
        post = slate.post_ids[row, col]
        m = len(post)
        watch = 1 / (1 + np.exp(-(quality[post] + behaviour.normal(0, 1, m))))
        fb = Feedback(user=users[row], post=post, channel=slate.channel[row, col], position=col.astype(np.int32),
                      watch_fraction=watch.astype(np.float32), completed=watch > 0.9,
                      liked=behaviour.random(m) < watch * 0.2, commented=behaviour.random(m) < 0.01,
                      shared=behaviour.random(m) < 0.01, followed=np.zeros(m, bool), purchased=np.zeros(m, bool))
        st.seen.add(users[row], post)
        np.add.at(st.posts.cols["views"], post, 1)
        ranker.observe(fb)
    return decisions, slates


STAR = tuple((u, a) for u in range(20, 300) for a in (0, 1, 2))  # authors 0-2 followed by everyone
SPARSE = tuple((u, (u * 7) % 20) for u in range(20, 300) if u % 5 == 0)  # a few followers each


def _same_trace(x, y) -> bool:  # type: ignore[no-untyped-def]
    (dx, sx), (dy, sy) = x, y
    if len(dx) != len(dy) or len(sx) != len(sy):
        return False
    for a, b in zip(dx, dy, strict=True):
        for name in ("post", "stage", "impressions", "score", "threshold", "promoted"):
            if not np.array_equal(getattr(a, name), getattr(b, name)):
                return False
    return all(np.array_equal(a.post_ids, b.post_ids) and np.array_equal(a.channel, b.channel)
               for a, b in zip(sx, sy, strict=True))


def test_content_pool_decisions_do_not_depend_on_followers() -> None:
    star, sparse = _pool_trace(STAR, 0.0), _pool_trace(SPARSE, 0.0)
    decisions = star[0]
    assert sum(len(d.post) for d in decisions) > 50
    assert any(d.promoted.any() for d in decisions), "no post was promoted: the trace checks nothing"
    assert any((d.stage > 0).any() for d in decisions), "no later stage was reviewed"
    assert any((s.channel >= POOL).any() for s in star[1])
    assert _same_trace(star, sparse)


def test_content_trace_does_depend_on_followers_when_they_are_mixed_in() -> None:
    # The harness can see a dependence when one exists: with follow_share > 0 the traces differ.
    assert not _same_trace(_pool_trace(STAR, 0.3), _pool_trace(SPARSE, 0.3))


def test_interrupted_run_resumes_to_identical_results(runner_outputs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A batch stopped after some runs (one run killed mid-write, leaving its temporary folder)
    finishes on re-run and its Parquet files equal those of an uninterrupted batch."""
    a, _, _ = runner_outputs
    exp = make_experiment(SCENARIO, {"world": {"users": 800}, "horizon_days": 0.1, "warmup_hours": 1.0,
                                     "recording": {"impression_sample_rate": 0.05}})
    keys = plan(points(exp))
    out = tmp_path / "resumed"
    Runner(exp, out, jobs=1, progress=lambda line: None).run(keys[:1])
    killed = keys[1].run_id(points(exp))
    (out / "runs" / f"{killed}.tmp").mkdir()
    (out / "runs" / f"{killed}.tmp" / "posts.parquet").write_bytes(b"half-written")
    outcomes = Runner(exp, out, jobs=2, progress=lambda line: None).run(keys)
    assert sorted(o.run_id for o in outcomes) == sorted(k.run_id(points(exp)) for k in keys[1:])
    assert not list((out / "runs").glob("*.tmp"))
    for f in _parquet_files(a):
        assert f.read_bytes() == (out / f.relative_to(a)).read_bytes(), f.relative_to(a)


def test_resuming_runs_of_another_version_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Runs written by another feedsim version: the resume warns about the revision, and tables
    that no longer line up stop the batch with a clear error instead of an Arrow traceback."""
    import json

    import pyarrow.parquet as pq

    from sim.batch.folder import checksums
    from sim.batch.runner import RunnerError, git_revision

    exp = make_experiment({"world": {"users": 500}, "horizon_days": 0.05, "warmup_hours": 0.5})
    keys = plan(points(exp))
    out = tmp_path / "old"
    Runner(exp, out, jobs=1, progress=lambda line: None).run(keys[:1])
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["git_revision"] = "0" * 40
    (out / "manifest.json").write_text(json.dumps(manifest))
    run_dir = out / "runs" / keys[0].run_id(points(exp))
    first = run_dir / "posts.parquet"
    pq.write_table(pq.read_table(first).drop_columns(["product"]), first)  # as before a column was added
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "files": checksums(run_dir)}))  # intact, as written
    lines: list[str] = []
    with pytest.raises(RunnerError, match=r"posts table has other columns.*different feedsim versions.*--force"):
        Runner(exp, out, jobs=1, progress=lines.append).run(keys)
    if git_revision() is not None:  # a checkout: the resume names both revisions
        assert any("was started at revision 0000000000" in line for line in lines)

    # A run written before runs recorded their configuration and checksums cannot be checked: redone.
    (run_dir / "run.json").write_text(json.dumps({k: info[k] for k in ("run_id", "impressions", "wall_s")}))
    lines.clear()
    Runner(exp, out, jobs=1, progress=lines.append).run(keys)
    assert any(f"redoing run {run_dir.name}: it records no configuration or checksums" in line for line in lines)
    assert "product" in pq.read_schema(first).names


def test_force_starts_over_a_folder_of_another_revision_and_resumes_one_of_this(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without --force a folder started at another revision resumes (with a warning); with it, the
    results feedsim wrote are replaced, so no model change mixes into them.  The same revision
    resumes either way: ``make calibrate`` passes --force and still resumes an interrupted run."""
    import json

    import sim.batch.runner as runner

    exp = make_experiment({"world": {"users": 500}, "horizon_days": 0.05, "warmup_hours": 0.5})
    keys = plan(points(exp))
    out = tmp_path / "out"
    monkeypatch.setattr(runner, "git_revision", lambda: "a" * 40)
    Runner(exp, out, jobs=1, progress=lambda line: None).run(keys[:1])
    first = out / "runs" / keys[0].run_id(points(exp)) / "posts.parquet"
    written = first.stat().st_mtime_ns
    lines: list[str] = []
    Runner(exp, out, jobs=1, force=True, progress=lines.append).run(keys[:1])  # same revision: resumed
    assert first.stat().st_mtime_ns == written and not any("--force" in line for line in lines)

    monkeypatch.setattr(runner, "git_revision", lambda: "b" * 40)
    Runner(exp, out, jobs=1, progress=lines.append).run(keys[:1])  # another revision, no --force: kept
    assert first.stat().st_mtime_ns == written
    assert any("started at revision aaaaaaaaaa, this is bbbbbbbbbb" in line and "--force" in line for line in lines)
    lines.clear()
    Runner(exp, out, jobs=1, force=True, progress=lines.append).run(keys[:1])
    assert f"--force: removed the results feedsim wrote in {out} (revision aaaaaaaaaa; this is bbbbbbbbbb)" in lines
    assert first.stat().st_mtime_ns != written
    assert json.loads((out / "manifest.json").read_text())["git_revision"] == "b" * 40


def test_git_changes_lists_the_tracked_files_that_differ_from_the_commit(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``git_changes``: changed and staged tracked files by their current path (a rename by its new
    name, a non-ASCII name as it is), untracked files left out; None outside a checkout or without git."""
    import shutil
    import subprocess

    import sim.batch.runner as runner

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for name in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):  # e.g. set by a hook running the tests
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for name in ("a.toml", "b.py", "c.py"):
        (repo / name).write_text("x = 1\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], cwd=repo, check=True)
    assert runner.git_changes(repo) == []
    (repo / "b.py").write_text("x = 2\n")
    (repo / "results.txt").write_text("untracked\n")
    assert runner.git_changes(repo) == ["b.py"]
    subprocess.run([*git, "mv", "c.py", "new -> é.py"], cwd=repo, check=True)  # staged rename, odd name
    assert runner.git_changes(repo) == ["b.py", "new -> é.py"]
    assert runner.git_changes(tmp_path / "missing") is None

    def no_git(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise FileNotFoundError("git")

    monkeypatch.setattr(runner.subprocess, "run", no_git)
    assert runner.git_changes(repo) is None


def test_the_manifest_records_uncommitted_changes_and_a_resume_with_others_says_so(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The manifest keeps ``git_changes`` beside ``git_revision``; a folder resumed from a checkout
    with other uncommitted changes warns and lists both, and ``--force`` starts it over."""
    import json

    import sim.batch.runner as runner

    exp = make_experiment({"world": {"users": 500}, "horizon_days": 0.05, "warmup_hours": 0.5})
    keys = plan(points(exp))
    out = tmp_path / "out"
    monkeypatch.setattr(runner, "git_revision", lambda: "a" * 40)
    monkeypatch.setattr(runner, "git_changes", lambda: ["experiments/x.toml"])
    Runner(exp, out, jobs=1, progress=lambda line: None).run(keys[:1])
    assert json.loads((out / "manifest.json").read_text())["git_changes"] == ["experiments/x.toml"]
    first = out / "runs" / keys[0].run_id(points(exp)) / "posts.parquet"
    written = first.stat().st_mtime_ns

    lines: list[str] = []
    Runner(exp, out, jobs=1, progress=lines.append).run(keys[:1])  # the same changes: resumed quietly
    assert not any("uncommitted" in line for line in lines)
    monkeypatch.setattr(runner, "git_changes", lambda: ["sim/model/behavior.py"])
    Runner(exp, out, jobs=1, progress=lines.append).run(keys[:1])  # other changes: kept, with a warning
    assert first.stat().st_mtime_ns == written
    assert any("was started with uncommitted changes to `experiments/x.toml`, this checkout has them to "
               "`sim/model/behavior.py`" in line and "--force" in line for line in lines)
    assert json.loads((out / "manifest.json").read_text())["git_changes"] == ["experiments/x.toml",
                                                                               "sim/model/behavior.py"]
    monkeypatch.setattr(runner, "git_changes", lambda: [])
    lines.clear()
    Runner(exp, out, jobs=1, force=True, progress=lines.append).run(keys[:1])  # --force: started over
    assert f"--force: removed the results feedsim wrote in {out} (other uncommitted changes to the checkout)" in lines
    assert first.stat().st_mtime_ns != written
    assert json.loads((out / "manifest.json").read_text())["git_changes"] == []


def test_more_replicates_keep_the_finished_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Raising ``replicates`` adds runs to a results folder and leaves the finished ones; the
    tables equal a fresh batch's."""
    import json

    small = {"world": {"users": 500}, "horizon_days": 0.05, "warmup_hours": 0.5}
    two, three = make_experiment(small, {"replicates": 2}), make_experiment(small, {"replicates": 3})
    out, fresh = tmp_path / "topped_up", tmp_path / "fresh"
    Runner(two, out, jobs=1, progress=lambda line: None).run(plan(points(two)))
    manifest = json.loads((out / "manifest.json").read_text())
    lost = sorted(manifest["runs"])[0]
    del manifest["runs"][lost]  # as when a run finishes while its batch is being stopped
    (out / "manifest.json").write_text(json.dumps(manifest))
    finished = {p.name: (p / "posts.parquet").read_bytes() for p in (out / "runs").iterdir()}
    lines: list[str] = []
    outcomes = Runner(three, out, jobs=1, progress=lines.append).run(plan(points(three)))
    assert len(outcomes) == 2 and any(f"resuming: {len(finished)} of 6 runs" in line for line in lines)
    assert {name: (out / "runs" / name / "posts.parquet").read_bytes() for name in finished} == finished
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["replicates"] == 3 and len(manifest["runs"]) == 6
    assert manifest["runs"][lost]["impressions"] == json.loads((out / "runs" / lost / "run.json").read_text())[
        "impressions"] > 0
    Runner(three, fresh, jobs=1, progress=lambda line: None).run(plan(points(three)))
    for name in TABLES:
        assert (out / f"{name}.parquet").read_bytes() == (fresh / f"{name}.parquet").read_bytes(), name
