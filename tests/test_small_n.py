"""Honest statistics at small n: no interval from fewer than 5 replicates, intervals inside the range a
quantity can take, slopes from too few points reported as too few, one bootstrap for summary.parquet and
the report, and Parquet columns that describe themselves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SCENARIO, make_experiment
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis import metrics, tables
from sim.analysis.summary import paired_differences, summary_rows
from sim.batch.combine import write_summary
from sim.batch.runner import TABLES, Runner, plan
from sim.config import points
from sim.recording import SCHEMAS

pytest.importorskip("matplotlib")

from test_plots import LABELS, SEED, synthetic, write_folder  # noqa: E402

from sim import report
from sim.report import figures as plots  # noqa: E402
from sim.report.formatting import fmt_metric  # noqa: E402

# --------------------------------------------------------------------------- metrics


def test_no_interval_below_five_values() -> None:
    for n in range(1, metrics.MIN_REPLICATES):
        x = np.arange(n, dtype=float)
        mean, lo, hi = metrics.mean_ci(x)
        assert mean == pytest.approx(x.mean()) and np.isnan(lo) and np.isnan(hi)
        mean, lo, hi = metrics.bootstrap_ci(x, np.random.default_rng(0))
        assert mean == pytest.approx(x.mean()) and np.isnan(lo) and np.isnan(hi)
    _, lo, hi = metrics.mean_ci(np.arange(5.0))
    assert lo == pytest.approx(2 - 2.7764451 * np.sqrt(2.5) / np.sqrt(5), rel=1e-5) and hi > lo


def test_bounded_metrics_never_get_impossible_bounds() -> None:
    # the quick run's cases: a share near 100%, a Gini of a spread pair, units sold near zero
    share = np.array([1.0, 0.99, 0.93, 1.0, 1.0])
    assert metrics.mean_ci(share, limits=metrics.bounds("focal_non_follower_share"))[2] == 1.0
    gini = np.array([0.14, 0.9, 0.95, 0.2, 0.99])
    assert metrics.mean_ci(gini, limits=metrics.bounds("views_gini"))[2] == 1.0
    sold = np.array([0.0, 0.0, 0.0, 0.0, 12.0])
    assert metrics.mean_ci(sold, limits=metrics.bounds("product.eye_cream.sold"))[1] == 0.0
    # a slope may be negative; max_stage is -1 when never in a pool
    assert metrics.bounds("products.all.conversion_comment_slope") == (-np.inf, np.inf)
    assert metrics.bounds("focal_max_stage") == (-1.0, np.inf)
    assert metrics.bounds("budget_used_share") == (0.0, np.inf)  # watch time may overrun the budget


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_share_intervals_stay_inside_0_1(values: list[float]) -> None:
    x = np.array(values)
    for metric in ("focal_reach_share", "low_follower_breakout_rate", "mean_watch_fraction", "views_gini",
                   "account.trinidad.core_view_share"):
        mean, lo, hi = metrics.mean_ci(x, limits=metrics.bounds(metric))
        assert 0.0 <= mean <= 1.0
        if len(x) < metrics.MIN_REPLICATES:
            assert np.isnan(lo) and np.isnan(hi)
        else:
            assert 0.0 <= lo <= mean <= hi <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=5, max_size=12), st.lists(st.floats(0.0, 1.0), min_size=5,
                                                                        max_size=12))
def test_summary_intervals_of_shares_stay_inside_0_1(a: list[float], b: list[float]) -> None:
    n = min(len(a), len(b))
    runs = {"run_id": [f"{lb}-r{i}" for lb in LABELS for i in range(n)],
            "ranker": [lb for lb in LABELS for _ in range(n)], "replicate": [i for _ in LABELS for i in range(n)],
            "focal_reach_share": a[:n] + b[:n]}
    out = metrics.summarise(runs, list(LABELS), "follower", np.random.default_rng(0))
    for lo, hi in zip(out["ci_low"], out["ci_high"], strict=True):
        assert 0.0 <= lo <= hi <= 1.0
    lo, hi = out["diff_ci_low"][0], out["diff_ci_high"][0]
    assert -1.0 <= lo <= hi <= 1.0  # a difference of two shares


def test_a_slope_from_too_few_points_is_nan() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=metrics.MIN_SLOPE_POINTS)
    slope, n = metrics.slope_or_too_few(x[:-1], 2 * x[:-1])
    assert np.isnan(slope) and n == metrics.MIN_SLOPE_POINTS - 1
    slope, n = metrics.slope_or_too_few(x, 2 * x)
    assert slope == pytest.approx(2.0) and n == metrics.MIN_SLOPE_POINTS


def test_the_report_says_too_few_posts_for_a_slope(tmp_path: Path) -> None:
    tables = synthetic()
    posts = tables["posts"]
    # three product posts with views: the quick run's case of +135.381 [+135.381, +135.381]
    product = [("cream" if i % 80 in (5, 6, 7) else None) for i in range(posts.num_rows)]
    posts = posts.set_column(posts.column_names.index("product"), "product", pa.array(product, pa.string()))
    ctx = plots.Context(experiment="toy", seed=SEED, replicates=2, labels=LABELS, plots_dir=tmp_path)
    slope, lo, hi, n = report.pooled_conversion_slope(posts.filter(pa.compute.is_valid(posts["product"])), "content",
                                                      SEED, min_views=0)
    assert np.isnan(slope) and np.isnan(lo) and n == 6
    text = "\n".join(report._conversion_section(posts, ctx))
    assert "too few posts (fewer than 30)" in text
    assert not re.search(r"\[([+-][\d.]+), \1\]", text)


# --------------------------------------------------------------------------- a tiny run, 2 replicates


@pytest.fixture(scope="module")
def two_replicates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exp = make_experiment(SCENARIO, {"replicates": 2, "baseline": "follower", "horizon_days": 0.04, "warmup_hours": 0.5,
                                     "world": {"users": 400}})
    out = tmp_path_factory.mktemp("small") / "two"
    outcomes = Runner(exp, out, jobs=1, progress=lambda line: None).run(plan(points(exp)))
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    return out


def test_a_two_replicate_summary_has_no_intervals(two_replicates: Path) -> None:
    summary = pq.read_table(two_replicates / "summary.parquet").to_pydict()
    assert len(summary["metric"]) > 50 and max(summary["n"]) == 2
    for column in ("ci_low", "ci_high", "diff_ci_low", "diff_ci_high"):
        assert all(v is None or np.isnan(v) for v in summary[column]), column
    assert any(v is not None and np.isfinite(v) for v in summary["mean"])
    assert any(v is not None and np.isfinite(v) for v in summary["diff_mean"])


def test_every_parquet_column_carries_its_description_and_unit(two_replicates: Path) -> None:
    files = [two_replicates / f"{name}.parquet" for name in (*TABLES, "summary")]
    files += sorted((two_replicates / "runs").glob("*/posts.parquet"))[:1]
    files += sorted((two_replicates / "impressions").rglob("*.parquet"))[:1]
    for path in files:
        table = "impressions" if "impressions" in path.parts else path.stem
        declared = {name: (unit, meaning) for name, _, unit, meaning in SCHEMAS[table]}
        schema = pq.read_schema(path)
        for field in schema:
            if field.name.startswith("sweep_"):
                continue
            assert field.metadata is not None, (path, field.name)
            unit, meaning = declared[field.name]
            assert field.metadata[b"description"].decode() == meaning, (path, field.name)
            assert field.metadata[b"unit"].decode() == unit, (path, field.name)
    assert pq.read_schema(two_replicates / "posts.parquet").field("created_at").metadata[b"unit"] == b"s"


# --------------------------------------------------------------------------- one bootstrap, 6 replicates


def _folder_with_summary(tmp_path: Path, replicates: int) -> Path:
    """The synthetic folder of test_plots with ``replicates`` replicates and the runner's own summary."""
    out = write_folder(tmp_path / "res", synthetic(replicates=replicates))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["replicates"] = replicates
    (out / "manifest.json").write_text(json.dumps(manifest))
    exp = make_experiment({"seed": SEED, "baseline": "follower", "replicates": replicates})
    write_summary(out, exp)
    return out


def _report_text(out: Path) -> str:
    """report.md's text without drawing the figures (the tables are what is checked)."""
    manifest, tables = report.load(out)
    tables["summary"] = report.load_table(out / "summary.parquet", "summary")
    ctx = report.context(manifest, tables["runs"], out / "plots")
    return report.markdown(manifest, tables, ctx, [], out)


def test_summary_and_report_print_the_same_intervals(tmp_path: Path) -> None:
    out = _folder_with_summary(tmp_path, 6)
    summary = summary_rows(pq.read_table(out / "summary.parquet"))
    text = _report_text(out)
    checked = 0
    for metric, label, kind in tables.HEADLINE_METRICS:
        row = summary[("content", metric)]
        if row["ci_low"] is None or not np.isfinite(row["ci_low"]):
            continue
        cell = (f"{fmt_metric(row['mean'], kind)} [{fmt_metric(row['ci_low'], kind)}, "
                f"{fmt_metric(row['ci_high'], kind)}]")
        assert any(ln.startswith(f"| {label} | {cell}") for ln in text.splitlines()), (label, cell)
        checked += 1
        if row["diff_ci_low"] is None:  # no pairs (the follower ranker never sells out)
            continue
        diff = (f"{fmt_metric(row['diff_mean'], kind, True)} [{fmt_metric(row['diff_ci_low'], kind, True)}"
                f", {fmt_metric(row['diff_ci_high'], kind, True)}] (n=6)")
        assert any(ln.startswith(f"| {label} | {diff} |") for ln in text.splitlines()), (label, diff)
    assert checked >= 5
    # the figure's rows are the summary's rows too
    runs = report.load(out)[1]["runs"]
    rows = paired_differences(runs, LABELS, "follower", summary)
    reach = next(r for r in rows if r["metric"] == "focal_reach_ratio")
    assert (reach["lo"], reach["hi"]) == (summary[("content", "focal_reach_ratio")]["diff_ci_low"],
                                          summary[("content", "focal_reach_ratio")]["diff_ci_high"])


def test_a_folder_without_summary_gets_the_runners_intervals(tmp_path: Path) -> None:
    out = _folder_with_summary(tmp_path, 6)
    written = pq.read_table(out / "summary.parquet")
    manifest, tables = report.load(out)
    made = report.summary_table(tables["runs"], manifest["config"], SEED)
    assert made.equals(written)


def test_the_report_says_no_interval_at_two_replicates(tmp_path: Path) -> None:
    out = _folder_with_summary(tmp_path, 2)
    text = _report_text(out)
    assert "n = 2: no interval" in text
    assert not re.search(r"\d of \d+ headline metrics differ", text)
    headline = text.split("## Headline numbers")[1].split("## ")[0]
    assert "[" not in headline.replace("[0, 1]", "")  # no interval anywhere in the headline tables
