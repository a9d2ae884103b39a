"""Figures and report: a tiny synthetic results folder (no simulation), every figure, titles from data,
clear errors for missing or corrupt tables."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

pytest.importorskip("matplotlib")  # the optional 'plots' extra (installed with 'dev')

from sim import report
from sim.analysis import metrics  # noqa: E402
from sim.analysis.summary import paired_differences, seeded_summary  # noqa: E402
from sim.recording import make_table  # noqa: E402
from sim.report import figures as plots  # noqa: E402

LABELS = ("content", "follower")
SEED = 7
REPLICATES = 2
HOURS = np.arange(0.0, 7.0)


def _run_keys(label: str, rep: int) -> dict[str, Any]:
    return {"run_id": f"{label}-r{rep}", "ranker": label, "replicate": rep}


def synthetic(reach: float = 1.0, sellout: bool = True, sweep: bool = False,
              replicates: int = REPLICATES) -> dict[str, pa.Table]:
    """Result tables for 2 rankers x ``replicates`` replicates, ~80 posts per run. ``reach`` scales the content
    ranker's views (so titles must change with it)."""
    rng = np.random.default_rng(3)
    parts: dict[str, list[pa.Table]] = {k: [] for k in ("runs", "focal", "posts", "promotions", "timeseries",
                                                       "impressions")}
    for rep in range(replicates):
        for label in LABELS:
            keys = _run_keys(label, rep)
            content = label == "content"
            n = 80
            followers = rng.integers(0, 5000, n)
            followers[5] = 70  # the tracked post's author
            if content:
                views = (rng.lognormal(6, reach, n) * reach).astype(int)
            else:
                views = (followers * rng.uniform(0.3, 0.9, n)).astype(int)
            views[5] = int((8000 if content else 45) * (reach if content else 1) * (1 + 0.1 * rep))
            split = rng.dirichlet(np.ones(5), n) if content else np.tile([0.97, 0.03, 0, 0, 0], (n, 1))
            chans = {c: np.floor(views * split[:, i]).astype(int) for i, (c, _, _) in enumerate(plots.SOURCES)}
            parts["posts"].append(make_table("posts", {
                **keys, "post_id": np.arange(n), "author_id": rng.integers(0, 40, n),
                "author_followers_at_post": followers, "created_at": np.linspace(-3600, 3600, n),
                "topic": "#booktok", "quality": rng.normal(size=n), "authenticity": 0.9, "length_s": 20.0,
                "event": [None] * 5 + ["hero_video"] + [None] * (n - 6), "views": views, "likes": views // 20,
                "comments": 0, "shares": 0, "follows": 0, "purchases": 0, "completions": 0, "watch_s": views * 5.0,
                **chans}))
            created_h = float(np.linspace(-3600, 3600, n)[5]) / 3600
            if content:
                ids = np.arange(40)
                stage = np.concatenate([np.zeros(40), np.ones(10), np.full(3, 2)]).astype(int)
                pid = np.concatenate([ids, ids[:10], ids[:3]])
                pid[40] = 5  # the tracked post gets to stage 1 ...
                pid[50] = 5  # ... and stage 2
                pid[5] = 5
                promoted = np.concatenate([np.arange(40) < 10, np.arange(10) < 3, np.zeros(3, bool)])
                promoted[5] = True
                promoted[40] = True
                time_s = np.concatenate([np.full(40, 1800.0), np.full(10, 7200.0), np.full(3, 18000.0)])
                parts["promotions"].append(make_table("promotions", {
                    **keys, "post_id": pid, "time_s": time_s, "stage": stage, "impressions": 300,
                    "score": rng.uniform(size=len(pid)), "threshold": 0.5, "promoted": promoted}))
            final = float(views[5])
            inv = np.maximum(0, 100 - (HOURS * (40 if content and sellout else 3))).astype(float)
            series = [(h, "hero_video", "post", "views", final * (h - created_h) / (HOURS[-1] - created_h))
                      for h in HOURS if h >= created_h]
            series += [(h, "hero", "account", "followers", 70 + (h * 9 * reach if content else 0)) for h in HOURS]
            series += [(h, "cream", "product", "inventory", v) for h, v in zip(HOURS, inv, strict=True)]
            series += [(h, "cream", "product", "sold", 100 - v) for h, v in zip(HOURS, inv, strict=True)]
            cols = {name: [r[i] for r in series] for i, name in enumerate(("time_h", "entity", "kind", "metric",
                                                                         "value"))}
            parts["timeseries"].append(make_table("timeseries", {**keys, **cols}))
            sold_h = float(np.argmax(inv <= 0)) - created_h if (inv <= 0).any() else None
            focal = {"entity": "hero_video", "post_id": 5, "author_id": 1, "followers_initial": 70,
                     "views": int(views[5]), "reach_ratio": views[5] / 70, "reach_share": views[5] / 20000,
                     "non_follower_share": 0.99 if content else 0.0, "followers_final": 120 if content else 70,
                     "sellout_hours": sold_h, "purchases": 100, "max_stage": 2 if content else -1,
                     "hours_to_1k": None, "hours_to_10k": None, "hours_to_100k": None}
            parts["focal"].append(make_table("focal", {**keys, **{k: [v] for k, v in focal.items()}}))
            headline = {
                "users": 20000, "posts": n, "impressions": int(views.sum()), "mean_watch_fraction": 0.3 + 0.01 * rep,
                "like_rate": 0.01, "comment_rate": 0.001, "share_rate": 0.001, "follow_rate": 0.001,
                "median_daily_watch_min": (12.0 if content else 1.0) + rep, "mean_daily_watch_min": 14.0,
                "mean_daily_budget_min": 25.0, "budget_used_share": 0.5,
                "following_share": 0.01 if content else 1.0, "pool_share": 0.1 if content else 0.0,
                "views_gini": metrics.gini(views), "creator_exposure_gini": 0.5, "never_reshared_share": 0.5,
                "top_quarter_creator_post_share": 0.4, "views_followers_slope": 0.0,
                "low_follower_breakout_rate": (0.4 if content else 0.0) * reach + 0.01 * rep, "low_follower_posts": 9,
            }
            runs = make_table("runs", {**keys, **headline, **{f"focal_{k}": v for k, v in focal.items()
                                                              if k not in ("entity", "post_id", "author_id")}})
            if sweep:
                for value in (0.1, 0.3):
                    t = runs.append_column("sweep_explore_share", pa.array([value]))
                    col = t.column_names.index("focal_reach_ratio")
                    t = t.set_column(col, "focal_reach_ratio",
                                     pa.array([float(focal["reach_ratio"]) * (1 + 5 * value)]))
                    parts["runs"].append(t)
            else:
                parts["runs"].append(runs)
            m = 50
            channel = (["for_you_pool_0"] * 20 + ["for_you_pool_1"] * 5 + ["for_you_explore"] * 25 if content
                       else ["following"] * 50)
            parts["impressions"].append(make_table("impressions", {
                **keys, "time_s": np.zeros(m), "user_id": np.arange(m), "post_id": np.zeros(m, int),
                "channel": channel, "position": np.zeros(m, int), "watch_fraction": np.full(m, 0.5),
                "liked": np.zeros(m, bool), "commented": np.zeros(m, bool), "shared": np.zeros(m, bool),
                "followed": np.zeros(m, bool), "purchased": np.zeros(m, bool), "tracked": np.zeros(m, bool)}))
    return {k: pa.concat_tables(v) for k, v in parts.items()}


def write_folder(out: Path, tables: dict[str, pa.Table]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name in report.REQUIRED:
        pq.write_table(tables[name], out / f"{name}.parquet")
    imp = tables["impressions"]
    for run_id in sorted(set(imp.column("run_id").to_pylist())):
        part = out / "impressions" / f"run_id={run_id}"
        part.mkdir(parents=True)
        pq.write_table(imp.filter(pa.compute.equal(imp["run_id"], run_id)), part / "part-0.parquet")
    manifest = {
        "experiment": "toy", "seed": SEED, "git_revision": "abc123", "jobs": 1, "wall_s": 1.5,
        "impressions_per_s": 1e6, "overrides": {"world.users": 20000},
        "config": {"name": "toy", "description": "A toy experiment.\nIt has two rankers.", "seed": SEED,
                   "replicates": REPLICATES, "horizon_days": 0.25, "warmup_hours": 1.0, "baseline": "follower",
                   "focal": "hero_video", "world": {"users": 20000, "accounts": [], "products": []},
                   "behavior": {"watch_quality": 0.9}, "events": [{"name": "hero_video", "product": "cream"}],
                   "rankers": [{"name": lb, "label": "", "params": {}} for lb in LABELS],
                   "recording": {"impression_sample_rate": 0.001}},
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def ctx_for(tmp: Path) -> plots.Context:
    return plots.Context(experiment="toy", seed=SEED, replicates=REPLICATES, labels=LABELS, plots_dir=tmp,
                         baseline="follower", focal="hero_video")


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return synthetic()


@pytest.fixture(scope="module")
def built(tables: dict[str, pa.Table], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One build() of the synthetic folder (drawing is the slow part): (folder, file stem -> title)."""
    out = write_folder(tmp_path_factory.mktemp("res") / "toy", tables)
    text = report.build(out).read_text()
    titles = {m.group(2): m.group(1) for m in re.finditer(r"^!\[(.*)\]\(plots/(\w+)\.png\)$", text, re.M)}
    return out, titles


def test_every_figure_writes_png_and_svg(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    out, titles = built
    expected = {"reach_over_time", "view_sources", "pool_ladder", "views_vs_followers", "inequality",
                "follower_growth", "inventory", "paired_differences"}
    assert set(titles) == expected
    sweep_runs = synthetic(sweep=True)["runs"]
    titles = dict(titles)
    titles["sweep_toy"] = plots.sweep(sweep_runs, "sweep_explore_share", "focal_reach_ratio", ctx_for(tmp_path),
                                      "sweep_toy")
    for name, title in titles.items():
        folder = tmp_path if name == "sweep_toy" else out / "plots"
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert png.stat().st_size > 10_000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert svg.stat().st_size > 1_000 and b"<svg" in svg.read_bytes()[:2000], name
        assert isinstance(title, str) and len(title) > 20, name
    assert "explore share" in titles["sweep_toy"] and "rises" in titles["sweep_toy"]
    # 16:9 at >= 200 dpi
    from matplotlib.image import imread

    h, w = imread(out / "plots" / "reach_over_time.png").shape[:2]
    assert w >= 2560 and abs(w / h - 16 / 9) < 0.01


def test_titles_state_findings_from_the_data(built: tuple[Path, dict[str, str]]) -> None:
    _, titles = built
    assert titles["reach_over_time"].startswith("Content ranker: 70-follower post reached")
    assert "pool 2" in titles["pool_ladder"]
    assert "sold out 3 h into the run" in titles["inventory"]
    assert "paired by replicate" in titles["paired_differences"]
    assert "@hero" in titles["follower_growth"]
    assert "For You" in titles["view_sources"] and "followed accounts" in titles["view_sources"]


def test_titles_change_with_the_data(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, before = built
    other = synthetic(reach=3.0, sellout=False)
    ctx = ctx_for(tmp_path)
    after = {
        "reach_over_time": plots.reach_over_time(other["timeseries"], other["focal"], other["posts"], ctx),
        "follower_growth": plots.follower_growth(other["timeseries"], ctx),
        "inventory": plots.inventory(other["timeseries"], ctx),
        "paired_differences": plots.forest(other["runs"], ctx),
        "inequality": plots.inequality(other["posts"], ctx),
    }
    for name, title in after.items():
        assert title != before[name], name
    assert "did not sell out" in after["inventory"]


def test_reach_headline_names_the_headline_posts_author_among_several_tracked(tables: dict[str, pa.Table],
                                                                              tmp_path: Path) -> None:
    # A second tracked post by a 3,000-follower author, listed in the focal table before the hero's:
    # the headline is about hero_video, so it names hero_video's 70 followers, not a median over both.
    focal = tables["focal"]
    other = focal.set_column(focal.column_names.index("entity"), "entity", pa.array(["big_video"] * focal.num_rows))
    other = other.set_column(other.column_names.index("followers_initial"), "followers_initial",
                             pa.array([3000] * focal.num_rows, focal.schema.field("followers_initial").type))
    both = pa.concat_tables([other, other, focal])
    title = plots.reach_over_time(tables["timeseries"], both, tables["posts"], ctx_for(tmp_path))
    assert title.startswith("Content ranker: 70-follower post reached"), title


def test_follower_growth_lays_out_several_accounts_two_to_a_row(tables: dict[str, pa.Table], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Three tracked accounts (cant_cheat tracks four): panels two to a row, the fourth hidden, one
    # legend, and no "axes sizes collapsed" warning from the layout (four in a row used to give one).
    ts = tables["timeseries"]
    hero = pc.equal(ts.column("entity"), "hero")
    more = [ts.filter(hero).set_column(ts.column_names.index("entity"), "entity",
                                       pa.array([name] * int(pc.sum(hero).as_py()))) for name in ("b", "c")]
    drawn: list[Any] = []
    monkeypatch.setattr(plots.accounts, "finish", lambda fig, *a, **k: drawn.append(fig) or "title")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.follower_growth(pa.concat_tables([ts, *more]), ctx_for(tmp_path))
        (fig,) = drawn
        fig.savefig(tmp_path / "f.png")
    panels = fig.axes
    assert len(panels) == 4 and [ax.get_visible() for ax in panels] == [True, True, True, False]
    assert [ax.get_title(loc="left") for ax in panels[:3]] == ["@hero", "@b", "@c"]  # the style titles left
    assert [ax.get_legend() is not None for ax in panels] == [True, False, False, False]
    assert [bool(ax.get_xlabel()) for ax in panels[:3]] == [False, True, True]  # under each column's last panel


def test_paired_differences_are_seeded_and_paired(tables: dict[str, pa.Table]) -> None:
    runs = tables["runs"]
    a = paired_differences(runs, LABELS, "follower", seeded_summary(runs, LABELS, "follower", SEED))
    b = paired_differences(runs, LABELS, "follower", seeded_summary(runs, LABELS, "follower", SEED))
    np.testing.assert_equal(a, b)
    row = next(r for r in a if r["metric"] == "median_daily_watch_min")
    assert row["ranker"] == "content" and row["n"] == REPLICATES
    assert row["mean"] == pytest.approx(11.0)
    assert np.isnan(row["lo"]) and np.isnan(row["hi"])  # 2 replicates: no interval


def test_build_writes_report_and_plots(built: tuple[Path, dict[str, str]]) -> None:
    out, _ = built
    text = (out / "report.md").read_text()
    for needle in ("# toy", "A toy experiment.", "## Setup", "## Headline numbers", "## Reproduce",
                   "python -m sim report", "python -m sim run experiments/toy.toml", "Seed 7", "n = 2: no interval",
                   "watch_quality=0.9", "Paired differences versus follower"):
        assert needle in text, needle
    images = re.findall(r"\]\((plots/\w+\.png)\)", text)
    assert len(images) >= 8
    for rel in images:
        assert (out / rel).stat().st_size > 0 and (out / rel).with_suffix(".svg").exists()


@pytest.mark.parametrize("name", ["posts", "runs"])
def test_build_names_a_missing_table(tables: dict[str, pa.Table], tmp_path: Path, name: str) -> None:
    out = write_folder(tmp_path / "res", tables)
    (out / f"{name}.parquet").unlink()
    with pytest.raises(report.ReportError, match=f"{name}.parquet"):
        report.build(out)


def test_build_names_a_corrupt_table(tables: dict[str, pa.Table], tmp_path: Path) -> None:
    out = write_folder(tmp_path / "res", tables)
    (out / "promotions.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(report.ReportError, match=r"promotions\.parquet"):
        report.build(out)


def test_build_names_a_corrupt_impressions_file(tables: dict[str, pa.Table], tmp_path: Path) -> None:
    out = write_folder(tmp_path / "res", tables)
    bad = out / "impressions" / "run_id=content-r1" / "part-0.parquet"
    bad.write_bytes(b"garbage")
    with pytest.raises(report.ReportError, match=r"run_id=content-r1/part-0\.parquet"):
        report.build(out)


def test_build_names_a_table_with_missing_columns(tables: dict[str, pa.Table], tmp_path: Path) -> None:
    out = write_folder(tmp_path / "res", tables)
    pq.write_table(tables["focal"].drop_columns(["reach_ratio"]), out / "focal.parquet")
    with pytest.raises(report.ReportError, match=r"focal\.parquet.*reach_ratio"):
        report.build(out)


def test_posts_written_before_later_columns_load_with_them_null(tables: dict[str, pa.Table], tmp_path: Path) -> None:
    out = write_folder(tmp_path / "res", tables)
    pq.write_table(tables["posts"].drop_columns(["product", "format", "views_in_stock"]), out / "posts.parquet")
    posts = report.load_table(out / "posts.parquet", "posts")
    for name in ("product", "format", "views_in_stock"):
        assert posts[name].null_count == posts.num_rows
    assert report.build(out).exists()


def test_build_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(report.ReportError, match="manifest.json"):
        report.build(tmp_path)


def test_build_handles_a_minimal_experiment(tables: dict[str, pa.Table], tmp_path: Path) -> None:
    """One ranker, no tracked entities, no pools: only the figures that apply, no crash."""
    pc = pa.compute
    small = {k: t.filter(pc.equal(t["ranker"], "follower")) for k, t in tables.items()}
    small["timeseries"] = small["timeseries"].slice(0, 0)
    small["focal"] = small["focal"].slice(0, 0)
    out = write_folder(tmp_path / "res", small)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"].update(rankers=[{"name": "follower", "label": "", "params": {}}], baseline="", focal="",
                              events=[])
    (out / "manifest.json").write_text(json.dumps(manifest))
    text = report.build(out).read_text()
    drawn = set(re.findall(r"\]\(plots/(\w+)\.png\)", text))
    assert drawn == {"view_sources", "views_vs_followers", "inequality"}
    assert "| Metric | follower |" in text


def test_ranker_and_channel_colours_never_share_a_hue() -> None:
    from colorsys import rgb_to_hsv

    def hue(color: str) -> float | None:  # degrees; None for greys (no hue)
        h, s, _ = rgb_to_hsv(*matplotlib_rgb(color))
        return None if s < 0.2 else 360 * h

    def matplotlib_rgb(color: str) -> tuple[float, float, float]:
        from matplotlib.colors import to_rgb

        return to_rgb(color)

    import matplotlib

    stages = [matplotlib.colors.to_hex(matplotlib.colormaps[plots.POOL_CMAP](0.35 + 0.55 * k / 7)) for k in range(8)]
    channels = [h for h in map(hue, [c for _, _, c in plots.SOURCES] + stages) if h is not None]
    rankers = [h for h in map(hue, plots.PALETTE) if h is not None]
    assert len(rankers) == len(plots.PALETTE)  # every ranker colour has a hue; greys are the channels'
    for a in channels:
        for b in rankers:
            assert min(abs(a - b), 360 - abs(a - b)) >= 30, (a, b)


def test_footers_state_the_scale_and_pool_labels_their_size(tmp_path: Path) -> None:
    ctx = plots.Context(experiment="toy", seed=SEED, replicates=2, labels=LABELS, plots_dir=tmp_path, users=50_000,
                        days=1.0, quick=True, pool_sizes=(300.0, 3000.0))
    assert "50,000 users · 1 day · 2 replicates per ranker · --quick run" in ctx.footnote()
    assert ctx.pool_label(1) == "pool 1 · 3,000" and ctx.pool_label(2) == "pool 2"
    assert "--quick not recorded" in ctx_for(tmp_path).footnote()
    note = plots.inventory_note(False, False)
    assert note == "Lines: median across replicates. No run sold out, so no sell-out line."


def test_report_reproduces_the_command_and_does_not_claim_the_full_world(tables: dict[str, pa.Table],
                                                                        tmp_path: Path) -> None:
    out = write_folder(tmp_path / "toy-quick", tables)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["description"] = "A toy experiment.\nThe world has 400,000 users."
    (out / "manifest.json").write_text(json.dumps(manifest))
    loaded, tabs = report.load(out)
    ctx = report.context(loaded, tabs["runs"], out / "plots")
    text = report.markdown(loaded, tabs, ctx, [], out)
    assert ctx.quick is True  # an older folder: the default --quick folder name
    assert "400,000" not in text and "`--quick` run: 20,000 users · 0.25 days · 2 replicates" in text
    assert f"python -m sim run experiments/toy.toml --quick --set world.users=20000 --out {out}" in text
    assert "20,000 users · 0.25 days · 2 replicates per ranker · --quick run" in text.splitlines()[-1]
    manifest.update(command="python -m sim run experiments/toy.toml --quick --jobs 1", quick=False)
    (out / "manifest.json").write_text(json.dumps(manifest))
    loaded, tabs = report.load(out)
    ctx = report.context(loaded, tabs["runs"], out / "plots")
    text = report.markdown(loaded, tabs, ctx, [], out)
    assert "python -m sim run experiments/toy.toml --quick --jobs 1\n" in text and ctx.quick is False
    assert "The world has 400,000 users." in text  # a full run keeps its description
