"""Declared claims: judged on hand-made tables, validated with file and key named, written by a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.__main__ import main
from sim.analysis.claims import evaluate, statistic_interval
from sim.batch.folder import write_parquet
from sim.batch.plan import config_hash
from sim.config import ConfigError
from sim.recording import make_table
from tests.conftest import make_experiment

# Two rankers, six replicates: content's values 10..15, follower's 1..6 (pairs differ by 9).
RUNS: dict[str, list[Any]] = {
    "run_id": [f"{lb}-r{r}" for lb in ("content", "follower") for r in range(6)],
    "ranker": ["content"] * 6 + ["follower"] * 6,
    "replicate": list(range(6)) * 2,
    "focal_reach_ratio": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    "account.a.views": [None] * 12,
}
SUMMARY: dict[str, list[Any]] = {
    "ranker": ["content"], "metric": ["focal_reach_ratio"], "n": [6], "mean": [12.5], "ci_low": [10.7],
    "ci_high": [14.3], "median": [12.5], "baseline": ["follower"], "diff_mean": [9.0], "diff_ci_low": [8.9],
    "diff_ci_high": [9.1],
}


def claim(**fields: Any) -> dict[str, Any]:
    return {"metric": "focal_reach_ratio", "ranker": "content", "statistic": "median", "compare": ">=",
            "threshold": 12.0, "sentence": "s", "point": -1, **fields}


def judged(*claims: dict[str, Any], runs: dict[str, list[Any]] = RUNS) -> list[dict[str, Any]]:
    cols = evaluate(list(claims), runs, SUMMARY)
    return [{k: v[i] for k, v in cols.items()} for i in range(len(claims))]


def test_pass_fail_and_missing_metric() -> None:
    ok, bad, absent, empty = judged(claim(), claim(threshold=13.0), claim(metric="nope"),
                                    claim(metric="account.a.views"))
    assert (ok["verdict"], ok["value"], ok["n"], ok["subject"]) == ("pass", 12.5, 6, "content")
    assert (ok["ci_low"], ok["ci_high"]) == (10.0, 15.0)  # the median's: order statistics 1 and 6 of 6
    assert (bad["verdict"], bad["value"]) == ("fail", 12.5)
    assert absent["verdict"] == empty["verdict"] == "not measured"
    assert absent["value"] is None and empty["n"] == 0
    assert [r["claim"] for r in judged(claim(), claim())] == [0, 1]


def test_statistics_share_of_replicates_and_too_few_replicates() -> None:
    rows = judged(claim(statistic="min", compare=">", threshold=9.0), claim(statistic="max", compare="<", threshold=15),
                  claim(statistic="mean", threshold=12.5),
                  claim(statistic="share_of_replicates", at_least=13.0, threshold=0.5),
                  claim(statistic="share_of_replicates", at_most=11.0, threshold=0.5),
                  claim(statistic="ci_low", compare=">", threshold=10.0))
    assert [r["verdict"] for r in rows] == ["pass", "fail", "pass", "pass", "fail", "pass"]
    assert rows[3]["value"] == 0.5 and rows[4]["value"] == pytest.approx(2 / 6)
    assert rows[5]["value"] == 10.7
    few = {k: v[:3] + v[6:9] for k, v in RUNS.items()}
    (row,) = judged(claim(ranker="follower", statistic="ci_high", compare="<", threshold=100.0), runs=few)
    assert (row["verdict"], row["n"], row["value"]) == ("too few replicates", 3, None)


def test_share_of_replicates_counts_a_replicate_without_a_value_as_not_meeting() -> None:
    runs = dict(RUNS, focal_sellout_hours=[50.0, None, 80.0, None, None, 200.0] + [None] * 6)
    (row,) = judged(claim(metric="focal_sellout_hours", statistic="share_of_replicates", at_most=120.0,
                          threshold=0.5), runs=runs)
    assert (row["value"], row["n"], row["verdict"]) == (pytest.approx(2 / 6), 6, "fail")
    # The follower ranker never sells out: 0 of 6, a fail, not "not measured".
    (never,) = judged(claim(metric="focal_sellout_hours", ranker="follower", statistic="share_of_replicates",
                            at_most=120.0, threshold=0.5), runs=runs)
    assert (never["value"], never["n"], never["verdict"]) == (0.0, 6, "fail")


def test_a_metric_relative_to_another_per_run() -> None:
    # best: twice each run's value, except content's replicate 5, which has none.
    runs = {**RUNS, "best": [2 * v for v in RUNS["focal_reach_ratio"]]}
    runs["best"][5] = None
    half, diff, missing = judged(claim(relative_to="best", threshold=0.5),
                                 claim(relative_to="best", ranker="", difference=["content", "follower"],
                                       compare="<=", threshold=0.0),
                                 claim(relative_to="nope"), runs=runs)
    assert (half["verdict"], half["value"], half["n"], half["metric"]) == ("pass", 0.5, 5, "focal_reach_ratio / best")
    assert half["ci_low"] is None  # a median's interval needs 6 values
    (mean,) = judged(claim(relative_to="best", statistic="mean", threshold=0.5), runs=runs)
    assert mean["ci_low"] == mean["ci_high"] == 0.5  # a t-interval of equal values, not the summary's
    assert (diff["verdict"], diff["value"], diff["n"]) == ("pass", 0.0, 5)
    assert missing["verdict"] == "not measured"


def test_each_statistic_shows_its_own_interval() -> None:
    median, mean, share, low, top = judged(
        claim(), claim(statistic="mean"), claim(statistic="share_of_replicates", at_least=13.0, threshold=0.5),
        claim(statistic="ci_low", compare=">", threshold=10.0), claim(statistic="max", compare="<=", threshold=15))
    assert (median["ci_low"], median["ci_high"]) == (10.0, 15.0)  # order statistics: all 6 of 6 at 95%
    assert (mean["ci_low"], mean["ci_high"]) == (10.7, 14.3)  # the summary's t-interval
    assert (low["ci_low"], low["ci_high"]) == (10.7, 14.3)
    # 3 of 6 replicates reach 13: the exact (Clopper-Pearson) interval of a binomial share
    assert (share["ci_low"], share["ci_high"]) == (pytest.approx(0.1181, abs=1e-4), pytest.approx(0.8819, abs=1e-4))
    assert top["ci_low"] is None and top["ci_high"] is None  # no interval for an extreme
    # A replicate without a value counts as not meeting a share, in the interval's count as in the share.
    runs = dict(RUNS, focal_sellout_hours=[50.0, None, 80.0, None, None, 200.0] + [None] * 6)
    (sold,) = judged(claim(metric="focal_sellout_hours", statistic="share_of_replicates", at_most=120.0,
                           threshold=0.5), runs=runs)
    assert (sold["value"], sold["n"]) == (pytest.approx(2 / 6), 6)  # 2 of 6: Clopper-Pearson [0.043, 0.777]
    assert (sold["ci_low"], sold["ci_high"]) == (pytest.approx(0.0433, abs=1e-4), pytest.approx(0.7772, abs=1e-4))
    # A median of paired differences gets the order-statistic interval of the differences (all 9 here).
    (diff,) = judged(claim(ranker="", difference=["content", "follower"], threshold=9.0))
    assert (diff["value"], diff["ci_low"], diff["ci_high"]) == (9.0, 9.0, 9.0)
    # 40 replicates 0..39: the median's interval runs from order statistic 14 to 27 (13.0 to 26.0)
    runs = {"run_id": [f"content-r{r}" for r in range(40)], "ranker": ["content"] * 40,
            "replicate": list(range(40)), "m": [float(r) for r in range(40)]}
    wide = {k: v[0] for k, v in evaluate([claim(metric="m", threshold=0.0)], runs, None).items()}
    assert (wide["value"], wide["ci_low"], wide["ci_high"]) == (19.5, 13.0, 26.0)


def test_paired_difference_and_ratio() -> None:
    diff, ratio, ci = judged(claim(ranker="", difference=["content", "follower"], statistic="mean", threshold=9.0),
                             claim(ranker="", ratio=["content", "follower"], compare="<=", threshold=3.0),
                             claim(ranker="", difference=["content", "follower"], statistic="ci_low",
                                   compare=">", threshold=8.0))
    assert (diff["subject"], diff["value"], diff["n"], diff["verdict"]) == ("content - follower", 9.0, 6, "pass")
    assert (diff["ci_low"], diff["ci_high"]) == (8.9, 9.1)  # the summary's bootstrap, follower is the baseline
    # content / follower per replicate: 10, 5.5, 4, 3.25, 2.8, 2.5
    assert ratio["subject"] == "content / follower" and ratio["value"] == pytest.approx(3.625)
    assert ratio["verdict"] == "fail"
    assert (ci["value"], ci["verdict"]) == (8.9, "pass")


def test_a_claim_at_a_sweep_point_reads_only_that_points_runs() -> None:
    runs = {"run_id": ["content-p0-r0", "content-p1-r0"], "ranker": ["content"] * 2, "replicate": [0, 0],
            "sweep_x": [1, 2], "m": [1.0, 5.0]}
    rows = [{k: v[i] for k, v in evaluate([claim(metric="m", point=p, threshold=3.0) for p in (0, 1)],
                                          runs, None).items()} for i in range(2)]
    assert [(r["value"], r["verdict"]) for r in rows] == [(1.0, "fail"), (5.0, "pass")]


def test_a_claim_across_sweep_points_is_about_the_paired_change() -> None:
    # Three points x two rankers x six replicates: content's value is 2 + point + replicate / 10,
    # follower's 1; replicate 5 has no run at point 0.
    runs: dict[str, list[Any]] = {"run_id": [], "ranker": [], "replicate": [], "m": []}
    for point in range(3):
        for label in ("content", "follower"):
            for r in range(6):
                if (point, r) == (0, 5):
                    continue
                runs["run_id"].append(f"{label}-p{point}-r{r}")
                runs["ranker"].append(label)
                runs["replicate"].append(r)
                runs["m"].append(2 + point + r / 10 if label == "content" else 1.0)
    claims = [claim(metric="m", points=[2, 0], threshold=2.0),
              claim(metric="m", ranker="", ratio=["content", "follower"], points=[1, 0], threshold=1.0),
              claim(metric="m", points=[0, 2], compare="<", threshold=0.0),
              claim(metric="m", points=[2, 1], statistic="ci_low", compare=">", threshold=0.5)]
    cols = evaluate(claims, runs, None)
    rises, ratio, falls, ci = ({k: v[i] for k, v in cols.items()} for i in range(len(claims)))
    assert (rises["value"], rises["n"], rises["verdict"]) == (2.0, 5, "pass")  # paired: replicate 5 left out
    assert rises["subject"] == "content at point 2 - at point 0" and rises["point"] == -1
    assert ratio["subject"] == "(content / follower) at point 1 - at point 0" and ratio["value"] == pytest.approx(1.0)
    assert (falls["value"], falls["verdict"]) == (-2.0, "pass")
    assert ci["value"] == pytest.approx(1.0) and ci["verdict"] == "pass"  # every replicate moves by exactly 1


def test_config_errors_name_the_file_and_key() -> None:
    def problems(*claims: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as err:
            make_experiment({"claims": list(claims)})
        return str(err.value)

    base = {"metric": "focal_views", "threshold": 1.0, "sentence": "s"}
    assert "test.toml: claims[0].ranker: unknown ranker label 'nope'" in problems({**base, "ranker": "nope"})
    assert "test.toml: claims[0].statistic: must be one of median" in problems(
        {**base, "ranker": "content", "statistic": "mode"})
    assert "test.toml: claims[0]: set exactly one of ranker, difference" in problems(base)
    assert "test.toml: claims[0].difference[1]: unknown ranker label 'x'" in problems(
        {**base, "difference": ["content", "x"]})
    assert "test.toml: claims[0].statistic: share_of_replicates needs at_least" in problems(
        {**base, "ranker": "content", "statistic": "share_of_replicates"})
    assert "test.toml: claims[0].threshold: required" in problems({"metric": "m", "ranker": "content",
                                                                   "sentence": "s"})
    assert "test.toml: claims[0].points: the file has no sweep" in problems(
        {**base, "ranker": "content", "points": [1, 0]})


def test_points_config_errors_name_the_key() -> None:
    sweep = {"sweep": {"world.polish_sensitivity_mean": [1.0, 0.5, 0.0]}}
    base = {"metric": "focal_views", "ranker": "content", "threshold": 1.0, "sentence": "s"}
    with pytest.raises(ConfigError) as err:
        make_experiment({**sweep, "claims": [{**base, "points": [1, 1]}, {**base, "points": [0, 3]},
                                             {**base, "points": [2, 0], "point": 1}]})
    text = str(err.value)
    assert "claims[0].points: expected two different point indices [a, b] (got [1, 1])" in text
    assert "claims[1].points[1]: expected a point index 0-2 (got 3)" in text
    assert "claims[2].point: not with points" in text
    ok = make_experiment({**sweep, "claims": [{**base, "points": [2, 0]}]})
    assert ok.claims[0].points == (2, 0)


def test_claims_do_not_change_the_config_hash() -> None:
    exp = make_experiment()
    declared = make_experiment({"claims": [{"metric": "focal_views", "ranker": "content", "threshold": 1.0,
                                            "sentence": "s"}]})
    assert len(declared.claims) == 1 and config_hash(exp) == config_hash(declared)


def test_a_run_writes_claims_parquet_and_the_reports_claims_section(tmp_path: Path, capsys: Any) -> None:
    table = {
        "name": "tiny", "seed": 3, "replicates": 1, "horizon_days": 1 / 24, "warmup_hours": 0.5,
        "world": {"users": 300, "topics": ["#a", "#b"], "posting_rate_mean": 0.5},
        "rankers": [{"name": "content"}, {"name": "follower"}], "baseline": "follower",
        "claims": [{"metric": "impressions", "ranker": "content", "compare": ">", "threshold": 0.0,
                    "sentence": "Content serves impressions"},
                   {"metric": "not_a_metric", "ranker": "content", "threshold": 0.0, "sentence": "Absent"}],
    }
    out = tmp_path / "tiny"
    sim.run(table, out=out, jobs=1, report=True)
    claims = pq.read_table(out / "claims.parquet")
    assert claims.column("verdict").to_pylist() == ["pass", "not measured"]
    assert claims.schema.field("verdict").metadata[b"description"].startswith(b"pass | fail")
    report = (out / "report.md").read_text()
    assert report.index("## Claims") < report.index("## Setup")
    assert "1 of 2 declared claims pass" in report and "Content serves impressions" in report
    assert main(["claims", str(out)]) == 1
    assert "NOT MEASURED" in capsys.readouterr().out


def test_the_claims_command_prints_each_claims_interval(tmp_path: Path, capsys: Any) -> None:
    cols = evaluate([claim(), claim(statistic="max", compare="<=", threshold=15.0)], RUNS, SUMMARY)
    write_parquet(make_table("claims", cols), tmp_path / "claims.parquet")
    assert main(["claims", str(tmp_path)]) == 0
    median, top = capsys.readouterr().out.splitlines()[1:]
    assert "median(focal_reach_ratio, content) = 12.5 (95% interval 10 to 15) >= 12" in median
    assert "max(focal_reach_ratio, content) = 15 <= 15" in top  # no interval for an extreme


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=6, max_size=60),
       st.floats(-1e6, 1e6, allow_nan=False))
def test_intervals_hold_their_statistic_and_stay_in_range(xs: list[float], bound: float) -> None:
    values = np.array(xs)
    lo, hi = statistic_interval("median", values, {})
    assert lo <= np.median(values) <= hi and lo in values and hi in values  # two order statistics
    share = {"at_least": bound}
    lo, hi = statistic_interval("share_of_replicates", values, share)
    assert 0.0 <= lo <= float(np.mean(values >= bound)) <= hi <= 1.0
    assert all(np.isnan(statistic_interval(s, values, share)).all() for s in ("min", "max"))
    assert np.isnan(statistic_interval("median", values[:5], {})).all()  # 5 values cannot give 95%
