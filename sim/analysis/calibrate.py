"""The calibration table: the default model's aggregates beside published figures.

``python -m sim.analysis.calibrate [RESULTS_DIR]`` reads a finished experiment's results folder
(default ``results/calibration``, made by ``make calibrate`` from
``experiments/calibration.toml``), and writes ``calibration.md`` (a markdown table) and
``calibration.json`` (the same rows, machine-readable, with every run's values) into it.

Each aggregate is computed per run (from ``runs.parquet`` where a headline column has it,
else from the run's posts, promotions and sampled impressions) and summarised as the median
over replicates, per ranker.  Published figures describe a For You platform, so the in-range
flag judges the content ranker's value; the follower ranker's is shown beside it as the
counterfactual.  A figure that is a single number is given a band, stated in the table.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.analysis import metrics
from sim.config import DAY

RANKERS = ("content", "follower")
#: Posts at least this old at the horizon enter the time-to-half-views estimate.
MIN_AGE_H = 24.0
#: The aggregates read straight from ``runs.parquet``: each is the sum of these columns of a run's row
#: (the shape rows are sim.analysis.metrics.view_shape's columns).
RUN_COLUMNS: dict[str, tuple[str, ...]] = {
    "median daily watch time (user-days with a session)": ("median_daily_watch_min",),
    "mean daily watch time (user-days with a session)": ("mean_daily_watch_min",),
    "mean watch fraction": ("mean_watch_fraction",),
    "likes + comments + shares per view": ("like_rate", "comment_rate", "share_rate"),
    "likes per view": ("like_rate",),
    "shares per view": ("share_rate",),
    "views from followed accounts": ("following_share",),
    "views Gini over posts": ("views_gini",),
    "median ÷ mean views per post": ("views_median_over_mean",),
    "mean views of the bottom 95% of posts": ("views_bottom95_mean",),
    "tail exponent of views (Hill, top 5% of posts)": ("views_tail_hill",),
    "share of a post's views in its first 24 h": ("first_day_view_share",),
    "posts never reshared": ("never_reshared_share",),
    "posts by the most active quarter of posters": ("top_quarter_creator_post_share",),
}


def run_value(row: dict[str, Any], aggregate: str) -> float | None:
    """An aggregate of :data:`RUN_COLUMNS` from one ``runs.parquet`` row (None where a column is
    missing or empty, as in a folder written before it existed).

    >>> run_value({"like_rate": 0.5, "comment_rate": 0.25, "share_rate": 0.125}, "likes + comments + shares per view")
    0.875
    >>> run_value({"like_rate": 0.5}, "likes + comments + shares per view") is None
    True
    """
    cells = [row.get(column) for column in RUN_COLUMNS[aggregate]]
    if any(c is None for c in cells):
        return None
    return float(sum(float(c) for c in cells if c is not None))


@dataclass(frozen=True)
class Reference:
    """A published figure: what it says, the band the model's value is judged against, its source.

    ``lo``/``hi``: bounds in the aggregate's own unit (None: open); both None: nothing to judge.
    ``note``: why the model departs, shown when the content ranker's value is outside the band.
    """

    published: str
    source: str
    lo: float | None = None
    hi: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Row:
    """One line of the table: medians over replicates per ranker, the figure and the verdict."""

    aggregate: str
    unit: str  # min | share | percent | hours | impressions | ratio
    content: float | None
    follower: float | None
    published: str
    lo: float | None
    hi: float | None
    source: str
    inside: bool | None  # content value within [lo, hi]; None: no value or no band
    note: str


DESIGN = "creator guides, as summarised in docs/model.md (traffic pools)"
PEW = "Pew Research Center, \"How U.S. Adults Use TikTok\" (Feb 2024), 2,745 surveyed users, Aug 2023"
TIME = ("app-analytics estimates 2023-24 (Insider Intelligence/eMarketer: ~54-58 min/day for US adult users; "
        "data.ai via DataReportal: ~31-34 h/month on Android, ~60-70 min/day)")
DONATION = ("Zannettou et al., \"Analyzing User Engagement with TikTok's Short Format Video Recommendations "
            "using Data Donations\", CHI 2024 (347 users, 9.2M views)")
SOCIALINSIDER = "Socialinsider, TikTok benchmarks 2023 (engagement rate by views 5.38%)"
TRENDPOP = ("Trendpop, \"The new TikTok video lifecycle\" (VidCon 2023): 32% of views in 24 h, 38% in 48 h, "
            "55% in a week")
PEX = "Pex, \"2023 TikTok data report: 85% of videos on TikTok contain music\" (Feb 2024)"
PEX_VIEWS = PEX + ": 5% of videos generate 89% of the views, over all public TikTok videos as of 31 Dec 2023"
PEX_MUSIC = PEX + ": 84.63% of all public TikTok videos contained music as of 31 Dec 2023"
STEEL = ("Steel et al., \"Just Another Hour on TikTok\" (2025): mean ~2,300 views per video; with Pex's "
         "5% / 89%, the other 95% average about 270 and the median is about a tenth of the mean")
HILL = ("tail exponent implied by Pex's 5% / 89% and by McGrady et al., JQD:DM 2023 (a random YouTube sample: "
        "the 3.7% of videos over 10,000 views hold 94% of views)")
TRENDPOP_DAY = (TRENDPOP + "; 32% in 24 h over 38% (48 h) to 55% (7 days) puts the first day at 0.58-0.84 of "
                "5-day views, about 0.66 interpolated")
WINKLER = ("Winkler, Hotz-Behofsits, Wlömert, Papies & Liaukonytė, \"Does TikTok Promote or Cannibalize Music "
           "Streaming?\" (arXiv 2405.14999): the top 10% of songs account for 96% of TikTok creations")
GOEL = ("Goel, Watts & Goldstein, \"The Structure of Online Diffusion Networks\", EC 2012: in seven domains "
        "the vast majority of cascades never spread beyond the seed")

#: aggregate -> (unit, reference).  Order is the table's order; pool-stage rows are added per stage.
REFERENCES: dict[str, tuple[str, Reference]] = {
    "median daily watch time (user-days with a session)": ("min", Reference(
        "below the 50-100 min mean (usage is skewed)", TIME, hi=100.0,
        note="the median sits below the published mean, as a skewed budget implies")),
    "mean daily watch time (user-days with a session)": ("min", Reference(
        "50-100 min for active users", TIME, lo=50.0, hi=100.0,
        note="the daily attention budget (log-normal, mean 60 min) sets it")),
    "mean watch fraction": ("share", Reference(
        "~45% (\"user attention stable at around 45%\"; band 40-50%)", DONATION, lo=0.40, hi=0.50)),
    "likes + comments + shares per view": ("percent", Reference(
        "5.38% (band 4-7%)", SOCIALINSIDER, lo=0.04, hi=0.07)),
    "likes per view": ("percent", Reference(
        "below 5.38%, of which likes are most", SOCIALINSIDER, hi=0.0538)),
    "shares per view": ("percent", Reference(
        "a small part of 5.38%", SOCIALINSIDER)),
    "views from followed accounts": ("share", Reference(
        "For You is mostly non-followed accounts; a follower feed is all followed (by definition)",
        "TikTok newsroom, \"How TikTok recommends videos #ForYou\" (2020): follower count is not a direct factor",
        hi=0.5)),
    "views Gini over posts": ("share", Reference("heavy-tailed; no published Gini found", "-")),
    "median ÷ mean views per post": ("ratio", Reference(
        "about 0.1 (judged against 0.03-0.2)", STEEL, lo=0.03, hi=0.2,
        note="retrieval and pools still spread views over posts that earned little")),
    "mean views of the bottom 95% of posts": ("impressions", Reference(
        "about 270: little beyond a test batch of 200-500 (judged against 150-500)", STEEL, lo=150.0,
        hi=500.0, note="posts that failed their test pool still earn views beyond it")),
    "tail exponent of views (Hill, top 5% of posts)": ("ratio", Reference(
        "about 1.0-1.1 (judged against 0.8-1.4)", HILL, lo=0.8, hi=1.4,
        note="the top posts' views are capped by the world's size: a post cannot be shown to a user twice")),
    "share of a post's views in its first 24 h": ("share", Reference(
        "0.58-0.84 of 5-day views (about 0.66)", TRENDPOP_DAY, lo=0.58, hi=0.84,
        note="posts earn their views too soon or too late")),
    "views to the top 5% of posts": ("share", Reference(
        "89% (lifetime views of every public video; judged against 80-95%)", PEX_VIEWS, lo=0.80, hi=0.95,
        note="a post cannot be shown to a user twice: in a 500,000-user world over 5 days the best posts reach "
             "a few hundred thousand viewers, not the hundreds of millions of a real platform's top videos, and "
             "Pex counts years of views; the size-free rows above (median / mean, bottom 95%, tail exponent) "
             "are the shape")),
    "posts that carry a sound": ("share", Reference(
        "85% of TikTok videos contain music (judged against 80-90%)", PEX_MUSIC, lo=0.80, hi=0.90,
        note="a sound here is any reusable audio (Pex counts music, reused or not): world.sound_share (30%) of "
             "ordinary posts release an original sound, and an ordinary post reuses one only if a sound moved its "
             "creator since its last post, so reuse saturates below Pex's share (docs/calibration.md, Sound reuse)")),
    "creations on the top 10% of reused sounds": ("share", Reference(
        "96% (songs with TikTok creations; judged against 90-99%)", WINKLER, lo=0.90, hi=0.99,
        note="derivatives spread over too many sounds, or too few")),
    "views on the most-viewed sound's posts": ("share", Reference(
        "no published figure (not judged); shown because one sound's derivatives can take over the feed", "-")),
    "posts never reshared": ("share", Reference(
        "most cascades never spread (> 90% of seeds adopted by nobody)", GOEL, lo=0.90,
        note="every post gets a test of 100-300 views, and at the model's share rate (a few per thousand "
             "views) a quarter of them earn at least one share; real reshares are concentrated on far fewer "
             "posts (and a reshare is not the same act as adopting a Twitter cascade)")),
    "posts by the most active quarter of users": ("share", Reference(
        "98% of public videos by the top 25% of users (over accounts' lifetimes; in a short run fewer than "
        "a quarter of users post at all, so this is met trivially)", PEW, lo=0.95, hi=1.0)),
    "posts by the most active quarter of posters": ("share", Reference(
        "(Pew counts all users, most of whom never post)", PEW,
        note="")),
    "hours for a typical post to reach half its views": ("hours", Reference(
        "not judged: every post counts once, so this is the time of a post that ends with its test pool",
        "-")),
}

#: Creator guides' traffic-pool ladder (docs/model.md): stage -> (published, lo, hi).
LADDER: dict[int, tuple[str, float | None, float | None]] = {
    0: ("200-500 first viewers", 200.0, 500.0),
    1: ("~1,000-3,000 (judged against 1,000-3,300: '~' read as up to 10% over)", 1_000.0, 3_300.0),
    2: ("~10,000-30,000 (judged against 10,000-33,000: '~' read as up to 10% over)", 10_000.0, 33_000.0),
    3: ("100,000+", 100_000.0, None),
}


def inside(value: float | None, lo: float | None, hi: float | None) -> bool | None:
    """Whether ``value`` lies in ``[lo, hi]`` (open where a bound is None).

    None when there is no value or nothing to judge against (both bounds None).

    >>> inside(0.47, 0.40, 0.50), inside(120.0, 50.0, 100.0), inside(30.0, None, 100.0), inside(1.0, None, None)
    (True, False, True, None)
    """
    if value is None or not np.isfinite(value) or (lo is None and hi is None):
        return None
    return bool((lo is None or value >= lo) and (hi is None or value <= hi))


# ----------------------------------------------------------------------------- per-run aggregates


def sound_uses(sound: np.ndarray, parent: np.ndarray, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sound carried by any of these posts (shape ``(n_posts,)`` each; sound -1: none, parent
    -1: not a derivative): its creations (derivative posts) and the views of all its posts, each
    of shape ``(n_sounds,)`` in increasing sound id.

    >>> sound_uses(np.array([4, 4, 4, -1, 9]), np.array([-1, 0, 0, -1, -1]), np.array([10, 5, 1, 7, 2]))
    (array([2, 0]), array([16.,  2.]))
    """
    has = sound >= 0
    ids, index = np.unique(sound[has], return_inverse=True)
    creations = np.bincount(index, weights=(parent[has] >= 0), minlength=len(ids)).astype(np.int64)
    return creations, np.bincount(index, weights=views[has].astype(np.float64), minlength=len(ids))


def half_views_hours(post_ids: np.ndarray, ages_s: np.ndarray, views: np.ndarray) -> float:
    """Hours by which the average post has half of its views, from sampled impressions.

    Parameters
    ----------
    post_ids : (n_sampled,) int
        Post of each sampled impression (eligible posts only).
    ages_s : (n_sampled,) float
        Age of the post at the impression, seconds.
    views : (n_sampled,) float
        Lifetime views (at the horizon) of that post.

    Each sampled impression is weighted 1 / (its post's views), so every post counts once
    whatever its reach: the weighted share of sampled views younger than ``t`` estimates the
    mean over posts of (views by age t / views), and the answer is the ``t`` where it reaches
    one half.  Self-normalised, so the sampling rate need not be known.  NaN without samples.

    >>> round(half_views_hours(np.array([0, 1, 1, 1, 1]), np.array([3600.0, 0, 0, 7200.0, 7200.0]),
    ...                        np.array([1.0, 4, 4, 4, 4])), 2)
    1.0
    """
    if len(post_ids) == 0:
        return float("nan")
    order = np.argsort(ages_s, kind="stable")
    weight = 1.0 / views[order]
    cum = np.cumsum(weight) / weight.sum()
    return float(ages_s[order][np.searchsorted(cum, 0.5)] / 3600.0)


def _impressions(out: Path) -> dict[str, dict[str, np.ndarray]]:
    """Sampled impressions of untracked posts per run: post_id and time_s."""
    root = out / "impressions"
    if not root.exists():
        return {}
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=["run_id", "post_id", "time_s", "tracked"])
    run_ids = np.asarray(table["run_id"].to_pylist(), dtype=object)
    keep = ~table["tracked"].to_numpy(zero_copy_only=False)
    post = table["post_id"].to_numpy()
    time_s = table["time_s"].to_numpy()
    return {rid: {"post_id": post[(run_ids == rid) & keep], "time_s": time_s[(run_ids == rid) & keep]}
            for rid in np.unique(run_ids)}


def _half_life(posts: dict[str, np.ndarray], sampled: dict[str, np.ndarray] | None, horizon_s: float) -> float:
    """Hours to half the views, over posts at least ``MIN_AGE_H`` old at the horizon (half the
    horizon in shorter runs): their views at the horizon stand for their lifetime views."""
    if sampled is None or len(sampled["post_id"]) == 0:
        return float("nan")
    min_age_s = min(MIN_AGE_H * 3600.0, horizon_s / 2)
    created = np.full(int(posts["post_id"].max()) + 1, np.nan)
    views = np.zeros(len(created))
    created[posts["post_id"]] = posts["created_at"]
    views[posts["post_id"]] = posts["views"]
    pid = sampled["post_id"]
    eligible = (created[pid] <= horizon_s - min_age_s) & (views[pid] > 0)
    ages = np.maximum(sampled["time_s"][eligible] - created[pid][eligible], 0.0)
    return half_views_hours(pid[eligible], ages, views[pid][eligible])


def _ladder(promotions: dict[str, np.ndarray]) -> dict[str, float]:
    """Per stage: the median impressions at a full review (early stops excluded: they are looked
    at before their batch is used), and the share of the stage's posts promoted."""
    out = {}
    early = promotions.get("early_stop", np.zeros(len(promotions["stage"]), bool))
    for stage in np.unique(promotions["stage"]):
        at = promotions["stage"] == stage
        full = at & ~early
        if full.any():
            out[f"pool stage {int(stage)}: impressions at review (median)"] = float(
                np.median(promotions["impressions"][full]))
        out[f"pool stage {int(stage)}: share promoted"] = float(promotions["promoted"][at].mean())
    return out


def run_aggregates(out: Path) -> dict[str, dict[str, Any]]:
    """Every run's aggregates: run_id -> {"ranker", "replicate", aggregate name -> value}."""
    out = Path(out)
    runs = pq.read_table(out / "runs.parquet").to_pydict()
    posts_table = pq.read_table(out / "posts.parquet", columns=["run_id", "post_id", "author_id", "created_at",
                                                                 "views", "sound", "parent"])
    promo_columns = ["run_id", "stage", "impressions", "promoted"]
    if "early_stop" in pq.read_schema(out / "promotions.parquet").names:
        promo_columns.append("early_stop")
    promotions_table = pq.read_table(out / "promotions.parquet", columns=promo_columns)
    manifest = json.loads((out / "manifest.json").read_text())
    horizon_s = float(manifest["config"]["horizon_days"]) * DAY
    sampled = _impressions(out)
    post_runs = np.asarray(posts_table["run_id"].to_pylist(), dtype=object)
    promo_runs = np.asarray(promotions_table["run_id"].to_pylist(), dtype=object)
    sound_ids = posts_table["sound"].fill_null(-1).to_numpy(zero_copy_only=False)
    sound_carriers = sound_ids >= 0
    parents = posts_table["parent"].fill_null(-1).to_numpy(zero_copy_only=False)
    result: dict[str, dict[str, Any]] = {}
    for i, rid in enumerate(runs["run_id"]):
        row = {k: runs[k][i] for k in runs}
        mine = post_runs == rid
        posts = {k: posts_table[k].to_numpy()[mine] for k in ("post_id", "author_id", "created_at", "views")}
        creations, sound_views = sound_uses(sound_ids[mine], parents[mine], posts["views"])
        per_user = np.bincount(posts["author_id"], minlength=int(row["users"]))
        at = promo_runs == rid
        promotions = {k: promotions_table[k].to_numpy(zero_copy_only=False)[at]
                      for k in promo_columns[1:]}
        result[rid] = {
            "ranker": row["ranker"], "replicate": row["replicate"],
            **{name: run_value(row, name) for name in RUN_COLUMNS},
            "views to the top 5% of posts": metrics.top_share(posts["views"], 0.05),
            "posts that carry a sound": float(sound_carriers[mine].mean()) if mine.any() else None,
            "creations on the top 10% of reused sounds": metrics.top_share(creations[creations > 0], 0.10),
            "views on the most-viewed sound's posts": (float(sound_views.max() / posts["views"].sum())
                                                       if len(sound_views) and posts["views"].sum() else None),
            # Pew's definition: the most active quarter of all users, posters or not.
            "posts by the most active quarter of users": metrics.top_share(per_user, 0.25),
            "hours for a typical post to reach half its views": _half_life(posts, sampled.get(rid), horizon_s),
            **_ladder(promotions),
        }  # fmt: skip
    return result


# ----------------------------------------------------------------------------- the table


def _median(values: list[Any]) -> float | None:
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else None


def table(out: Path, rankers: tuple[str, str] = RANKERS) -> list[Row]:
    """The calibration rows of a results folder: medians over replicates per ranker.

    ``rankers``: the labels of the content-graph and follower-graph rankers in the experiment.
    """
    per_run = run_aggregates(out)
    pools = _pool_sizes(out, rankers[0])
    names = list(REFERENCES) + sorted({k for agg in per_run.values() for k in agg if k.startswith("pool stage")},
                                      key=lambda k: (int(k.split()[2].rstrip(":")), "share" in k))

    def median_of(label: str, name: str) -> float | None:
        return _median([agg.get(name) for agg in per_run.values() if agg["ranker"] == label])

    rows = []
    for name in names:
        if name in REFERENCES:
            unit, ref = REFERENCES[name]
        else:
            unit, ref = _stage_reference(name)
        content, follower = median_of(rankers[0], name), median_of(rankers[1], name)
        verdict = inside(content, ref.lo, ref.hi)
        stage = int(name.split()[2].rstrip(":")) if name.startswith("pool stage") else -1
        label = name.replace(":", f" (pool of {pools[stage]:,.0f}):") if stage in pools else name
        rows.append(Row(label, unit, content, follower, ref.published, ref.lo, ref.hi, ref.source, verdict,
                        ref.note if verdict is False else ""))
    return rows


def _pool_sizes(out: Path, label: str) -> dict[int, float]:
    """Configured pool size per stage of the content ranker (empty if it has no ladder)."""
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    spec = next((r for r in manifest["config"].get("rankers", []) if (r.get("label") or r["name"]) == label), None)
    params = (spec or {}).get("params", {})
    if "pool_first" not in params:
        return {}
    return {s: params["pool_first"] * params["pool_growth"] ** s for s in range(int(params["stages"]))}


def _stage_reference(name: str) -> tuple[str, Reference]:
    stage = int(name.split()[2].rstrip(":"))
    if "share promoted" in name:
        return "share", Reference("not published (each stage ~10x the last)", DESIGN)
    published, lo, hi = LADDER.get(stage, ("-", None, None))
    return "impressions", Reference(published, DESIGN if stage in LADDER else "-", lo, hi,
                                    note="a stage is reviewed at its timeout (3x its target fill time) with the "
                                         "impressions it has; a 300,000 pool is 60% of a 500,000-user world, "
                                         "more than a post's widened audience gives it in time")


def fmt(value: float | None, unit: str) -> str:
    """A value as the table shows it (``-`` for none)."""
    if value is None:
        return "-"
    if unit == "min":
        return f"{value:.0f} min"
    if unit == "hours":
        return f"{value:.1f} h"
    if unit == "percent":
        return f"{value:.2%}"
    if unit == "impressions":
        return f"{value:,.0f}"
    if unit == "ratio":
        return f"{value:.2f}"
    return f"{value:.0%}" if value >= 0.01 else f"{value:.2%}"


def markdown(rows: list[Row]) -> str:
    """The table as markdown, then a line per row whose content value is outside its band."""
    lines = ["| aggregate | content | follower | published | inside | source |",
             "| --- | --- | --- | --- | --- | --- |"]
    verdicts = {True: "yes", False: "**no**", None: "-"}
    for r in rows:
        lines.append(f"| {r.aggregate} | {fmt(r.content, r.unit)} | {fmt(r.follower, r.unit)} | {r.published} | "
                     f"{verdicts[r.inside]} | {r.source} |")
    notes = [f"- {r.aggregate}: {r.note}." for r in rows if r.inside is False and r.note]
    if notes:
        lines += ["", "Where the content ranker's value is outside the published band:", "", *notes]
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[Row]) -> None:
    """Write ``calibration.md`` and ``calibration.json`` into ``out``."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    header = (f"# Calibration: {manifest.get('experiment', out.name)}\n\n"
              f"Medians over replicates per ranker (`{out}`, git {str(manifest.get('git_revision'))[:10]}). "
              "`inside` judges the content ranker's value against the published band.\n\n")
    (out / "calibration.md").write_text(header + markdown(rows))
    doc = {"experiment": manifest.get("experiment"), "git_revision": manifest.get("git_revision"),
           "rows": [asdict(r) for r in rows], "runs": run_aggregates(out)}
    (out / "calibration.json").write_text(json.dumps(doc, indent=2, default=float))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print("usage: python -m sim.analysis.calibrate [RESULTS_DIR]   (default results/calibration)")
        return 0 if args and args[0] in ("-h", "--help") else 2
    out = Path(args[0] if args else "results/calibration")
    if not (out / "runs.parquet").exists():
        print(f"{out}: no runs.parquet; run `make calibrate` (or python -m sim run "
              f"experiments/calibration.toml --out {out}) first", file=sys.stderr)
        return 2
    rows = table(out)
    write(out, rows)
    print(markdown(rows), end="")
    print(f"wrote {out / 'calibration.md'} and {out / 'calibration.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
