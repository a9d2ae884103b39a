"""Sweeps, --quick, summary.parquet and paired comparisons on tiny worlds."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sim.analysis.metrics import bootstrap_ci
from sim.batch.runner import Runner, plan
from sim.config import ConfigError, parse, points, quick_overrides, sweep_points
from sim.report import _conversion_section, pooled_conversion_slope, reference_point
from sim.report import figures as plots


def tiny(**extra):
    table = {
        "seed": 3, "replicates": 2, "horizon_days": 0.1, "warmup_hours": 1.0, "baseline": "follower",
        "world": {"users": 1500, "accounts": [{"name": "a", "followers": 10, "topic": "#crafttok"}]},
        "events": [{"name": "v", "account": "a", "at_hours": 0.2, "quality_quantile": 0.9}],
        "rankers": [{"name": "follower"}, {"name": "hybrid", "label": "mix"}],
    }  # fmt: skip
    table.update(extra)
    return table


def test_grid_and_zip_expand_to_their_product() -> None:
    pts = sweep_points({"x": [1, 2, 3], "zip": {"a": [0, 1], "b": [5, 6]}})
    assert len(pts) == 6
    assert {(p["x"], p["a"], p["b"]) for p in pts} == {(x, a, a + 5) for x in (1, 2, 3) for a in (0, 1)}


def test_sweep_over_an_unknown_key_names_it() -> None:
    with pytest.raises(ConfigError) as err:
        parse(tiny(sweep={"world.userz": [1, 2]}), "s.toml")
    assert "sweep.world.userz" in str(err.value) and "unknown key" in str(err.value)


def test_sweep_value_out_of_range_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse(tiny(sweep={"rankers.mix.alpha": [0.5, 2.0]}), "s.toml")
    assert "sweep.rankers.mix.alpha" in str(err.value)


def test_points_resolve_each_parameter() -> None:
    exp = parse(tiny(sweep={"rankers.mix.alpha": [0.0, 1.0]}), "s.toml")
    pts = points(exp)
    assert [p.exp.rankers[1].params.alpha for p in pts] == [0.0, 1.0]
    assert len(plan(pts)) == 2 * 2 * 2  # points x rankers x replicates


def test_quick_defaults_shrink_big_experiments() -> None:
    q = quick_overrides({"world": {"users": 400_000}, "horizon_days": 5})
    assert q == {"replicates": 2, "world.users": 50_000, "horizon_days": 1.0}
    assert quick_overrides({"quick": {"replicates": 1}}) == {"replicates": 1}


def test_sweep_runs_carry_their_point_and_summary_pairs_within_points(tmp_path) -> None:
    exp = parse(tiny(sweep={"rankers.mix.alpha": [0.0, 1.0]}), "s.toml")
    Runner(exp, tmp_path, jobs=1, progress=lambda line: None).run(plan(points(exp)))
    runs = pq.read_table(tmp_path / "runs.parquet").to_pydict()
    assert sorted(set(runs["sweep_rankers_mix_alpha"])) == [0.0, 1.0]
    assert len(runs["run_id"]) == 8 and len(set(runs["run_id"])) == 8
    summary = pq.read_table(tmp_path / "summary.parquet").to_pydict()
    rows = [i for i, (r, m) in enumerate(zip(summary["ranker"], summary["metric"], strict=True))
            if r == "mix" and m == "following_share"]
    assert len(rows) == 2  # one per point
    by_alpha = {summary["sweep_rankers_mix_alpha"][i]: summary["diff_mean"][i] for i in rows}
    # alpha = 0 is the follower feed itself (the paired difference is ~0); alpha = 1 is For You.
    assert abs(by_alpha[0.0]) < 0.05
    assert by_alpha[1.0] < -0.5


def test_pairing_shrinks_the_ci_of_a_difference() -> None:
    """Common random numbers: runs sharing a replicate's world and arrivals are correlated, so the
    CI of the paired difference is narrower than that of the difference of independent means."""
    rng = np.random.default_rng(0)
    world_effect = rng.normal(0, 5, 12)  # what a replicate's shared world adds to both rankers
    a = 10 + world_effect + rng.normal(0, 1, 12)
    b = 12 + world_effect + rng.normal(0, 1, 12)
    _, lo, hi = bootstrap_ci(b - a, np.random.default_rng(1))
    b_indep = 12 + rng.normal(0, 5, 12) + rng.normal(0, 1, 12)  # independent seeds
    boot = np.random.default_rng(2)
    diffs = [b_indep[boot.integers(0, 12, 12)].mean() - a[boot.integers(0, 12, 12)].mean() for _ in range(2000)]
    lo_i, hi_i = np.quantile(diffs, [0.025, 0.975])
    assert hi - lo < (hi_i - lo_i) / 2


def test_figures_of_tracked_entities_show_one_sweep_point() -> None:
    ids = ["content-p0-r0", "content-p1-r0", "follower-p0-r0", "follower-p1-r0", "content-p10-r1"]
    runs = pa.table({"run_id": ids, "ranker": [i.split("-")[0] for i in ids],
                     "sweep_x": [0.0, 1.0, 0.0, 1.0, 9.0]})
    assert reference_point(runs, {})[0] == {"content-p0-r0", "follower-p0-r0"}
    chosen, sentence = reference_point(runs, {"baseline_point": 1})
    assert chosen == {"content-p1-r0", "follower-p1-r0"} and "point 1" in sentence and "x = 1.0" in sentence
    assert reference_point(runs.drop(["sweep_x"]), {}) is None  # no sweep: every run


def test_the_conversion_table_has_a_row_per_ranker_and_sweep_point(tmp_path) -> None:
    rng = np.random.default_rng(5)
    n = 80
    comments = rng.integers(0, 20, n)
    slope = np.repeat([0.002, -0.001], n // 2)  # point 0 rises with comments, point 1 falls
    posts = pa.table({"run_id": [f"content-p{p}-r{r}" for p in (0, 1) for r in range(4) for _ in range(n // 8)],
                      "ranker": ["content"] * n, "replicate": np.tile(np.repeat(np.arange(4), n // 8), 2),
                      "sweep_proof": np.repeat([0.25, 0.0], n // 2), "product": ["soap"] * n,
                      "views": np.full(n, 1000), "views_in_stock": np.full(n, 1000), "comments": comments,
                      "purchases": np.round(1000 * (0.02 + slope * np.log1p(comments))).astype(int)})
    ctx = plots.Context(experiment="t", seed=1, replicates=4, labels=("content",), plots_dir=tmp_path)
    lines = _conversion_section(posts, ctx)
    rows = [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines if ln.startswith("| content")]
    assert [r[0] for r in rows] == ["content, proof = 0.25", "content, proof = 0.0"]
    assert [r[1] for r in rows] == ["40", "40"]
    assert [float(r[2]) for r in rows] == [pytest.approx(2.0, abs=0.1), pytest.approx(-1.0, abs=0.1)]  # per 1,000
    at_zero = posts.filter(pc.equal(posts["sweep_proof"], 0.0))
    assert pooled_conversion_slope(at_zero, "content", 1)[0] == pytest.approx(-0.001, abs=1e-4)


def test_only_picks_runs_and_the_header_counts_what_it_picked(tmp_path, capsys) -> None:
    from sim.__main__ import main
    from sim.batch.plan import RunnerError

    exp = parse(tiny(sweep={"rankers.mix.alpha": [0.0, 1.0]}), "s.toml")
    pts = points(exp)
    picked = plan(pts, {"ranker": "mix", "replicate": "1"})
    assert [(k.point, k.ranker, k.replicate) for k in picked] == [(0, 1, 1), (1, 1, 1)]
    with pytest.raises(RunnerError, match="unknown key"):
        plan(pts, {"rankr": "mix"})
    (tmp_path / "s.toml").write_text(
        'seed = 3\nreplicates = 2\nhorizon_days = 0.05\nwarmup_hours = 0.5\n'
        '[world]\nusers = 1500\n'
        '[[rankers]]\nname = "follower"\n[[rankers]]\nname = "hybrid"\nlabel = "mix"\n'
        '[sweep]\n"rankers.mix.alpha" = [0.0, 1.0]\n')
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--jobs", "1",
                 "--only", "ranker=mix,replicate=1"]) == 0
    assert "2 runs (2 points x 1 ranker x 1 replicate)" in capsys.readouterr().err


def test_the_run_summary_keeps_a_long_ranker_label_apart_from_its_metric(tmp_path) -> None:
    from sim.batch.overview import summary_lines

    exp = parse(tiny(rankers=[{"name": "follower", "label": "follower_engagement"}, {"name": "content"}],
                     baseline="content"), "s.toml")
    pq.write_table(pa.table({"ranker": ["follower_engagement", "content"], "median_daily_watch_min": [15.7, 29.1]}),
                   tmp_path / "runs.parquet")
    header, *rows = summary_lines(tmp_path, exp)
    assert rows == [
        "follower_engagement  median daily watch (min)            15.7        15.7        15.7  1/1",
        "content              median daily watch (min)            29.1        29.1        29.1  1/1",
    ]
    assert header.index("metric") == rows[0].index("median daily")
