"""The benchmark's pieces run and report what they claim (no wall-clock asserts)."""

from __future__ import annotations

from sim import bench


def test_floor_kernel_serves_impressions() -> None:
    assert bench.floor_kernel(seconds=0.2) > 0


def test_bench_table_and_engine_on_a_tiny_world() -> None:
    exp = bench.bench_experiment(2000, 0.02)
    row = bench.run_engine(exp, exp.rankers[0])
    assert row["impressions"] > 0 and row["impressions_per_s"] > 0
    text = bench.table([{"users": 2000, "days": 0.02, "impressions_per_s": 1, "follower_impressions_per_s": 1,
                         "floor_impressions_per_s": 2, "ratio": 0.5, "peak_rss_mb": 10.0, "setup_s": 0.1}])
    assert "2,000" in text and "0.500" in text


def test_scaling_plot_is_written(tmp_path) -> None:
    from sim.report.figures import bench_scaling

    rows = [{"users": u, "impressions_per_s": 100 + u // 1000, "follower_impressions_per_s": 50,
             "floor_impressions_per_s": 1000, "peak_rss_mb": u / 1000} for u in (50_000, 100_000)]
    title = bench_scaling(rows, tmp_path / "scaling")
    assert (tmp_path / "scaling.png").stat().st_size > 0 and (tmp_path / "scaling.svg").stat().st_size > 0
    assert "100,000 users" in title


def test_jobs_scaling_batch_and_table() -> None:
    exp = bench.jobs_experiment(3, 2000, 0.02)
    assert [s.label for s in exp.rankers] == ["content-0", "content-1", "content-2"]
    assert len({s.name for s in exp.rankers}) == 1
    text = bench.jobs_table([{"jobs": 2, "runs": 4, "users": 20_000, "days": 0.25, "wall_s": 16.0,
                              "runs_per_s": 0.25, "impressions_per_s": 250_000, "speedup": 1.9}])
    assert "20,000" in text and "250,000" in text and "1.90x" in text
