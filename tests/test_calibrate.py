"""The calibration table (sim.analysis.calibrate) built from a tiny finished experiment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sim.analysis import calibrate, metrics
from sim.batch.runner import Runner, plan
from tests.conftest import make_experiment


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TINY (3,000 users, 6 h after 2 h of warm-up), content and follower, every impression recorded."""
    exp = make_experiment({"recording": {"impression_sample_rate": 1.0}})
    out = tmp_path_factory.mktemp("calibration") / "tiny"
    runner = Runner(exp, out, jobs=1, progress=lambda line: None)
    runner.run(plan(runner.points))
    return out


def test_inside_judges_closed_bands_and_open_bounds() -> None:
    assert calibrate.inside(0.40, 0.40, 0.50) is True
    assert calibrate.inside(0.50, 0.40, 0.50) is True
    assert calibrate.inside(0.39, 0.40, 0.50) is False
    assert calibrate.inside(0.51, 0.40, 0.50) is False
    assert calibrate.inside(5.0, None, 100.0) is True
    assert calibrate.inside(101.0, None, 100.0) is False
    assert calibrate.inside(1e9, 100_000.0, None) is True
    assert calibrate.inside(1.0, None, None) is None  # nothing published to judge against
    assert calibrate.inside(None, 0.0, 1.0) is None
    assert calibrate.inside(float("nan"), 0.0, 1.0) is None


def test_half_views_weights_every_post_once() -> None:
    # Post 0: its one view at 1 h.  Post 1: 8 views, all at 4 h.  The average post has half of
    # its views by 1 h (post 0 all, post 1 none); the median sampled view is at 4 h.
    post = np.array([0] + [1] * 8)
    age = np.array([3600.0] + [14400.0] * 8)
    views = np.array([1.0] + [8.0] * 8)
    assert calibrate.half_views_hours(post, age, views) == 1.0
    assert np.median(age) / 3600 == 4.0
    # Post 1 half at 0 h, half at 4 h: a quarter of the average post's views by 0 h, three
    # quarters by 1 h.
    age = np.array([3600.0] + [0.0] * 4 + [14400.0] * 4)
    assert calibrate.half_views_hours(post, age, views) == 1.0
    assert math.isnan(calibrate.half_views_hours(np.zeros(0, int), np.zeros(0), np.zeros(0)))


def test_rows_of_a_tiny_run(results: Path) -> None:
    rows = calibrate.table(results)
    by_name = {r.aggregate: r for r in rows}
    for name in calibrate.REFERENCES:
        assert name in by_name, name
    runs = pq.read_table(results / "runs.parquet").to_pydict()

    def median(column: str, ranker: str) -> float:
        return float(np.median([v for v, r in zip(runs[column], runs["ranker"], strict=True) if r == ranker]))

    watch = by_name["mean watch fraction"]
    assert watch.content == pytest.approx(median("mean_watch_fraction", "content"))
    assert watch.follower == pytest.approx(median("mean_watch_fraction", "follower"))
    engagement = by_name["likes + comments + shares per view"]
    assert engagement.content == pytest.approx(median("like_rate", "content") + median("comment_rate", "content")
                                               + median("share_rate", "content"))
    followed = by_name["views from followed accounts"]
    assert followed.content is not None and followed.content < 0.5
    assert followed.follower is not None and followed.follower > 0.9
    # Every user is counted, posters or not: the most active quarter make at least the posters' share.
    users = by_name["posts by the most active quarter of users"].content
    posters = by_name["posts by the most active quarter of posters"].content
    assert users is not None and posters is not None and users >= posters
    posts = pq.read_table(results / "posts.parquet", columns=["run_id", "views"]).to_pydict()
    run_ids = np.asarray(posts["run_id"], dtype=object)
    views = np.asarray(posts["views"])
    top = [metrics.top_share(views[run_ids == rid], 0.05) for r, rid in zip(runs["ranker"], runs["run_id"],
                                                                             strict=True) if r == "content"]
    concentration = by_name["views to the top 5% of posts"].content
    assert concentration == pytest.approx(float(np.median(top)))
    assert concentration is not None and 0.05 < concentration <= 1.0
    # A post carries a sound when its sound id is not null: its own original sound or a reused one.
    sounds = pq.read_table(results / "posts.parquet", columns=["run_id", "sound"]).to_pydict()
    carries = np.array([s is not None for s in sounds["sound"]])
    sound_runs = np.asarray(sounds["run_id"], dtype=object)
    for ranker in ("content", "follower"):
        shares = [carries[sound_runs == rid].mean() for r, rid in zip(runs["ranker"], runs["run_id"], strict=True)
                  if r == ranker]
        carried = getattr(by_name["posts that carry a sound"], ranker)
        assert carried == pytest.approx(float(np.median(shares)))
        assert carried is not None and 0.0 < carried < 1.0  # some posts release a sound, most do not
    half = by_name["hours for a typical post to reach half its views"]
    assert half.content is not None and 0 <= half.content <= 6.0  # the tiny run's horizon
    stages = [r for r in rows if r.aggregate.startswith("pool stage 0 (pool of 300)")]
    assert [r.unit for r in stages] == ["impressions", "share"]
    assert stages[0].follower is None  # the follower ranker has no pools
    assert 0 < stages[0].content <= 300 and stages[0].lo == 200.0
    for r in rows:  # the flag is the content value judged against the row's band
        assert r.inside == calibrate.inside(r.content, r.lo, r.hi), r.aggregate
        assert (r.note != "") <= (r.inside is False)


def test_writes_markdown_and_json(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate.main([str(results)]) == 0
    text = (results / "calibration.md").read_text()
    assert "| aggregate | content | follower | published | inside | source |" in text
    assert "Pew Research Center" in text
    doc = json.loads((results / "calibration.json").read_text())
    assert [r["aggregate"] for r in doc["rows"]] == [r.aggregate for r in calibrate.table(results)]
    assert set(doc["runs"]) == {"content-r0", "follower-r0"}
    assert "| mean watch fraction |" in capsys.readouterr().out


def test_missing_results_folder_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate.main([str(tmp_path)]) == 2
    assert "make calibrate" in capsys.readouterr().err


def test_docstring_examples() -> None:
    import doctest

    assert doctest.testmod(calibrate).failed == 0


def test_view_shape_on_a_hand_made_table() -> None:
    day = 86_400.0
    horizon = 6 * day
    # 100 posts made at t = 0 (6 days old): 95 with 10 views, 5 with 1,000; 10 young posts (1 h old).
    views = np.concatenate([np.full(95, 10.0), np.full(5, 1000.0), np.full(10, 7.0)])
    created = np.concatenate([np.zeros(100), np.full(10, horizon - 3600.0)])
    first_day = np.concatenate([np.full(95, 10.0), np.full(5, 600.0), np.full(10, 7.0)])
    shape = metrics.view_shape(created, views, first_day, horizon)
    mean = (95 * 10 + 5 * 1000) / 100
    assert shape["views_median_over_mean"] == pytest.approx(10 / mean)
    assert shape["views_bottom95_mean"] == pytest.approx(10.0)
    # The top 5 are all 1,000 over a threshold of 10: Hill = 1 / log(100).
    assert shape["views_tail_hill"] == pytest.approx(1 / np.log(100.0))
    assert shape["first_day_view_share"] == pytest.approx((950 + 3000) / (950 + 5000))
    few = metrics.view_shape(created[:10], views[:10], first_day[:10], horizon)  # under 40 settled posts
    assert np.isnan(few["views_median_over_mean"]) and np.isnan(few["views_tail_hill"])
    assert few["first_day_view_share"] == 1.0
