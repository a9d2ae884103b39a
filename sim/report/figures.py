"""Figures for strategy decks: the only module that imports matplotlib.

Every figure function takes result tables (``pyarrow.Table``, columns as in
:data:`sim.recording.SCHEMAS`) and a :class:`Context`, writes
``<ctx.plots_dir>/<name>.png`` (200 dpi, 16:9) and ``<name>.svg``, and returns
the figure's title: a sentence stating the finding, computed from the data.

Conventions: one fixed colour per ranker label (the label's position in the
experiment file picks it from :data:`PALETTE`); lines are medians over
replicates with a min-max band; log axes where tails are heavy; a footnote
names the experiment, its seed and the number of replicates.

The small data helpers here (:func:`column`, :func:`paired_differences`, ...)
are pure; the report uses them too so that its tables match the figures.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.lines  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from sim.analysis import metrics  # noqa: E402
from sim.model.rng import streams  # noqa: E402

# Okabe-Ito, colour-blind safe; ranker i in the experiment file gets PALETTE[i].  Rankers take the
# hues; channels (SOURCES, pool stages) take greys and purples, which no ranker uses, so a colour in a
# deck means one thing (tests/test_plots.py checks the hues stay apart).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
FIGSIZE = (12.8, 7.2)
DPI = 200
STYLE: dict[str, Any] = {
    "font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 12, "ytick.labelsize": 12,
    "legend.fontsize": 12, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.6, "svg.fonttype": "none",
    "axes.titleweight": "bold", "axes.titlelocation": "left",
}  # fmt: skip

# Headline metrics: column, label, kind (formatting and difference units).
HEADLINE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("focal_reach_ratio", "Focal post: views ÷ author's followers", "ratio"),
    ("focal_reach_share", "Focal post: share of users reached", "share"),
    ("focal_non_follower_share", "Focal post: views from non-followers", "share"),
    ("focal_sellout_hours", "Focal product: hours to sell out", "hours"),
    ("low_follower_breakout_rate", "10–99-follower posts reaching 100× followers", "share"),
    ("median_daily_watch_min", "Median daily watch time", "min"),
    ("mean_watch_fraction", "Mean share of each video watched", "share"),
    ("views_gini", "Gini of views over posts", "gini"),
    ("following_share", "Impressions from followed accounts", "share"),
)
METRIC_INFO = {name: (label, kind) for name, label, kind in HEADLINE_METRICS}
# How a headline names each metric inside a sentence.
METRIC_PHRASE = {
    "focal_reach_ratio": "the focal post's views per follower",
    "focal_reach_share": "the share of users the focal post reached",
    "focal_non_follower_share": "the focal post's share of views from non-followers",
    "focal_sellout_hours": "hours to sell out",
    "low_follower_breakout_rate": "the small-creator breakout rate",
    "median_daily_watch_min": "median daily watch time",
    "mean_watch_fraction": "the share of each video watched",
    "views_gini": "the Gini of views",
    "following_share": "the share of impressions from followed accounts",
}

# View sources: posts-table column, legend label, colour (follow graph: greys; For You: purples and violet).
SOURCES = (
    ("views_following", "Following feed", "#3A3A3A"),
    ("views_reshare", "Reshares by followed accounts", "#8C8C8C"),
    ("views_pool", "For You: traffic pools", "#6A51A3"),
    ("views_explore", "For You: interest retrieval", "#9C27B0"),
    ("views_other", "Other (sound pages, baseline and custom rankers)", "#D9D9D9"),
)
#: Colour map of the pool stages (light = stage 0); purple, like the pools' SOURCES colour.
POOL_CMAP = "Purples"


@dataclass(frozen=True)
class Context:
    """What every figure needs besides the data."""

    experiment: str
    seed: int
    replicates: int
    labels: tuple[str, ...]  # ranker labels in the experiment file's order
    plots_dir: Path
    baseline: str = ""
    focal: str = ""
    git_revision: str | None = None
    users: int | None = None  # world.users of the runs (after --quick)
    days: float | None = None  # horizon_days
    quick: bool | None = None  # made with --quick (None: not recorded)
    pool_sizes: tuple[float, ...] = ()  # impressions of each traffic-pool stage (empty: no ladder)

    def color(self, label: str) -> str:
        if label in self.labels:
            return PALETTE[self.labels.index(label) % len(PALETTE)]
        return PALETTE[(len(self.labels) + sum(map(ord, label))) % len(PALETTE)]

    def scale(self) -> str:
        """What the runs were: '50,000 users · 1 day · 2 replicates per ranker · --quick run'."""
        parts = []
        if self.users is not None:
            parts.append(f"{self.users:,} users")
        if self.days is not None:
            parts.append(f"{self.days:g} day{'s' if self.days != 1 else ''}")
        parts.append(f"{self.replicates} replicate{'s' if self.replicates != 1 else ''} per ranker")
        parts.append({True: "--quick run", False: "full run (not --quick)", None: "--quick not recorded"}[self.quick])
        return " · ".join(parts)

    def footnote(self, note: str = "") -> str:
        rev = f" · git {self.git_revision[:10]}" if self.git_revision and self.git_revision != "HEAD" else ""
        text = f"feedsim · experiment '{self.experiment}' · {self.scale()} · seed {self.seed}{rev}"
        return f"{text}\n{note}" if note else text

    def pool_label(self, stage: int, prefix: str = "pool") -> str:
        """'pool 1 · 3,000': a stage with its pool's impressions where the ladder is known."""
        if 0 <= stage < len(self.pool_sizes):
            return f"{prefix} {stage} · {self.pool_sizes[stage]:,.0f}"
        return f"{prefix} {stage}"

    def ordered(self, present: Sequence[str]) -> list[str]:
        """Labels present in the data: the experiment file's order first, then any others sorted."""
        have = set(present)
        return [lb for lb in self.labels if lb in have] + sorted(have - set(self.labels))


# --------------------------------------------------------------------------- pure helpers


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: numbers as float64 with NaN for nulls (ints without nulls kept), strings as object."""
    col = table.column(name)
    t = col.type
    if pa.types.is_integer(t) and col.null_count == 0:
        return np.asarray(col.to_numpy())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.asarray(col.to_numpy(), dtype=np.float64)
    if pa.types.is_boolean(t):
        return np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)


def runs_of(table: pa.Table) -> dict[str, tuple[str, np.ndarray]]:
    """run_id -> (ranker label, row indices), in order of first appearance."""
    run_ids = column(table, "run_id")
    rankers = column(table, "ranker")
    out: dict[str, tuple[str, np.ndarray]] = {}
    if len(run_ids) == 0:
        return out
    uniq, first, inverse = np.unique(run_ids.astype(str), return_index=True, return_inverse=True)
    for k in np.argsort(first):
        out[str(uniq[k])] = (str(rankers[first[k]]), np.flatnonzero(inverse == k))
    return out


def by_ranker(table: pa.Table) -> dict[str, list[np.ndarray]]:
    """Ranker label -> list of row-index arrays, one per run."""
    out: dict[str, list[np.ndarray]] = {}
    for label, idx in runs_of(table).values():
        out.setdefault(label, []).append(idx)
    return out


def pair_keys(runs: pa.Table) -> list[str]:
    """Columns that pair runs across rankers: the replicate and any sweep parameters."""
    return ["replicate"] + sorted(c for c in runs.column_names if c.startswith("sweep_"))


Summary = dict[tuple[str, str], dict[str, Any]]
"""(ranker, metric) -> a row of ``summary.parquet`` as a dict (one sweep point's rows)."""


def summary_rows(summary: pa.Table | dict[str, list] | None, point: dict[str, Any] | None = None) -> Summary:
    """The rows of a summary table (``summary.parquet``, or :func:`sim.analysis.metrics.summarise` columns) at one
    sweep ``point`` (``{sweep column: value}``; None or empty: every row, for an experiment without a
    sweep), keyed by (ranker, metric)."""
    if summary is None:
        return {}
    cols = summary.to_pydict() if isinstance(summary, pa.Table) else summary
    if not cols or not cols.get("ranker"):
        return {}
    out: Summary = {}
    for i, (ranker, metric) in enumerate(zip(cols["ranker"], cols["metric"], strict=True)):
        if point and any(c in cols and cols[c][i] != v for c, v in point.items()):
            continue
        out[(str(ranker), str(metric))] = {k: v[i] for k, v in cols.items()}
    return out


def seeded_summary(runs: pa.Table, labels: Sequence[str], baseline: str, seed: int) -> Summary:
    """What ``summary.parquet`` holds for these runs (one point): for figures drawn without a results
    folder.  The same function and bootstrap stream as the runner's, so the same intervals."""
    cols = {k: v for k, v in runs.to_pydict().items() if not k.startswith("sweep_")}
    return summary_rows(metrics.summarise(cols, list(labels), baseline or None, streams(seed, 0)["bootstrap"]))


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def paired_differences(runs: pa.Table, labels: Sequence[str], baseline: str, summary: Summary,
                       metric_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Ranker minus baseline per replicate (same sweep point): the mean and bootstrap CI from
    ``summary`` (:func:`summary_rows`; null CI below :data:`sim.analysis.metrics.MIN_REPLICATES` pairs), the
    number of pairs counted from ``runs``.

    One row per (ranker, metric), rankers in ``labels`` order then metrics in order:
    ``{ranker, metric, mean, lo, hi, n}``; ``n`` is the number of pairs where both values exist.
    """
    names = list(metric_names) if metric_names is not None else [m for m, _, _ in HEADLINE_METRICS]
    names = [m for m in names if m in runs.column_names]
    keys = pair_keys(runs)
    key_cols = [column(runs, k) for k in keys]
    ranker = column(runs, "ranker")

    def index(label: str) -> dict[tuple[Any, ...], int]:
        return {tuple(c[i] for c in key_cols): int(i) for i in np.flatnonzero(ranker == label)}

    base = index(baseline)
    rows = []
    for label in labels:
        if label == baseline:
            continue
        mine = index(label)
        common = [k for k in mine if k in base]
        for name in names:
            values = column(runs, name)
            diff = np.array([values[mine[k]] - values[base[k]] for k in common], dtype=np.float64)
            n = int(np.isfinite(diff).sum())
            row = summary.get((label, name), {})
            mean = _num(row.get("diff_mean")) if n else float("nan")
            lo, hi = _num(row.get("diff_ci_low")), _num(row.get("diff_ci_high"))
            rows.append({"ranker": label, "metric": name, "mean": mean, "lo": lo, "hi": hi, "n": n})
    return rows


def median_band(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(grid, median, min, max) of sampled curves (x, y), each linearly interpolated on the union of
    their x values (NaN outside a curve's own range)."""
    grid = np.unique(np.concatenate([x for x, _ in curves])) if curves else np.zeros(0)
    if len(grid) == 0:
        return grid, grid, grid, grid
    stack = np.vstack([_interp(x, y, grid) for x, y in curves])
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return grid, np.nanmedian(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def _interp(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    x, y = x[order].astype(np.float64), y[order].astype(np.float64)
    if len(x) == 0:
        return np.full(len(grid), np.nan)
    out = np.interp(grid, x, y)
    return np.where((grid < x[0] - 1e-9) | (grid > x[-1] + 1e-9), np.nan, out)


def fmt_times(x: float) -> str:
    """A multiple: 1,840× / 117× / 9.3× / 0.67×."""
    if not np.isfinite(x):
        return "n/a"
    if abs(x) >= 10:
        return f"{x:,.0f}×"
    return f"{x:.1f}×" if abs(x) >= 1 else f"{x:.2f}×"


def fmt_pct(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    p = 100 * x
    if abs(p) >= 10 or p == 0:
        return f"{p:.0f}%"
    return f"{p:.1f}%" if abs(p) >= 1 else f"{p:.2f}%"


def fmt_num(x: float, digits: int = 2) -> str:
    if not np.isfinite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def fmt_hours(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g} h" if x < 48 else f"{x / 24:.1f} days"


def fmt_metric(value: float, kind: str, signed: bool = False) -> str:
    """Format a metric value (or, with ``signed``, a difference: shares in percentage points)."""
    if not np.isfinite(value):
        return "n/a"
    sign = "+" if signed and value > 0 else ""
    if kind == "share":
        if signed:
            return f"{sign}{fmt_num(100 * value, 1)} pp"
        return fmt_pct(value)
    if kind == "ratio":
        return sign + fmt_times(value)
    if kind == "hours":
        return f"{sign}{fmt_num(value, 1)} h"
    if kind == "min":
        return f"{sign}{fmt_num(value, 1)} min"
    return sign + fmt_num(value, 2)


def _count(x: float) -> str:
    return f"{x:,.0f}" if np.isfinite(x) else "n/a"


def _join_others(parts: list[str]) -> str:
    if not parts:
        return ""
    return " vs " + ", ".join(parts)


# --------------------------------------------------------------------------- figure plumbing


@contextmanager
def _styled() -> Iterator[None]:
    with matplotlib.rc_context(cast(Any, STYLE)):
        yield


def _figure(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _finish(fig: Figure, ctx: Context, name: str, title: str, note: str = "") -> str:
    """Headline, footnote, save PNG and SVG; return the title."""
    wrapped = "\n".join(textwrap.wrap(title, 88))
    fig.suptitle(wrapped, x=0.01, ha="left", fontsize=17, fontweight="bold")
    foot = ctx.footnote(note)
    lines = foot.count("\n") + 1
    engine = fig.get_layout_engine()
    if engine is not None:
        bottom = 0.025 * lines + 0.012
        engine.set(rect=(0, bottom, 1, 1 - bottom))  # type: ignore[call-arg]
    fig.text(0.01, 0.008, foot, ha="left", va="bottom", fontsize=10, color="#555555")
    ctx.plots_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.plots_dir / f"{name}.png", dpi=DPI)
    fig.set_layout_engine("none")  # keep the layout just computed: the SVG matches the PNG, and is faster
    fig.savefig(ctx.plots_dir / f"{name}.svg")
    return title


def _positive(a: np.ndarray) -> np.ndarray:
    """NaN where not positive (log axes cannot show zeros)."""
    return np.where(a > 0, a, np.nan)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=13, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _label_color(ax: Any, ctx: Context, which: str = "y") -> None:
    labels = ax.get_yticklabels() if which == "y" else ax.get_xticklabels()
    for t in labels:
        if t.get_text() in ctx.labels:
            t.set_color(ctx.color(t.get_text()))
            t.set_fontweight("bold")


_count_fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")


def _primary_entity(focal: pa.Table, ctx: Context) -> str | None:
    entities = [str(e) for e in column(focal, "entity")] if focal.num_rows else []
    if not entities:
        return None
    return ctx.focal if ctx.focal in entities else entities[0]


def created_hours(posts: pa.Table | None, focal: pa.Table) -> dict[tuple[str, str], float]:
    """(run_id, entity) -> creation time of the tracked post (h from the end of warm-up)."""
    out: dict[tuple[str, str], float] = {}
    if posts is None or focal.num_rows == 0:
        return out
    tracked_ids = pa.array(sorted({int(p) for p in column(focal, "post_id")}), pa.int64())
    posts = posts.filter(pc.is_in(posts["post_id"], value_set=tracked_ids))
    post_runs = column(posts, "run_id")
    post_ids = column(posts, "post_id")
    created = column(posts, "created_at")
    lookup = {(str(r), int(p)): float(c) / 3600.0 for r, p, c in zip(post_runs, post_ids, created, strict=True)}
    for r, e, p in zip(column(focal, "run_id"), column(focal, "entity"), column(focal, "post_id"), strict=True):
        if (str(r), int(p)) in lookup:
            out[(str(r), str(e))] = lookup[(str(r), int(p))]
    return out


def _medians(table: pa.Table, value: str, where: np.ndarray | None = None) -> dict[str, tuple[float, int]]:
    """Ranker -> (median of ``value`` over its runs' rows, number of finite values)."""
    vals = column(table, value)
    rankers = column(table, "ranker")
    mask = np.ones(len(vals), bool) if where is None else where
    out = {}
    for label in sorted(set(map(str, rankers[mask]))):
        v = vals[mask & (rankers == label)].astype(np.float64)
        v = v[np.isfinite(v)]
        out[label] = (float(np.median(v)) if len(v) else float("nan"), len(v))
    return out


# --------------------------------------------------------------------------- figures


def reach_over_time(timeseries: pa.Table, focal: pa.Table, posts: pa.Table | None, ctx: Context,
                    name: str = "reach_over_time") -> str:
    """Cumulative views of each tracked post against hours since it was posted, per ranker."""
    with _styled():
        ts = _series(timeseries, "post", "views")
        entities = list(dict.fromkeys(map(str, column(ts, "entity")))) if ts.num_rows else []
        primary = _primary_entity(focal, ctx)
        if primary in entities:
            entities.remove(primary)
            entities.insert(0, primary)
        entities = entities[:4] or ["(no tracked post)"]
        fig, axes = _figure(1, len(entities), sharey=True)
        created = created_hours(posts, focal)
        run_col, ent_col = column(ts, "run_id"), column(ts, "entity")
        t_col, v_col, rk_col = column(ts, "time_h"), column(ts, "value"), column(ts, "ranker")
        span: dict[str, float] = {}  # entity -> longest time observed after the post (h)
        ymax = 1.0
        for ax, entity in zip(axes[0], entities, strict=True):
            sel = ent_col == entity
            if not sel.any():
                _empty(ax, "no tracked posts in this experiment")
                continue
            for label in ctx.ordered(list(map(str, rk_col[sel]))):
                curves = []
                for run in dict.fromkeys(map(str, run_col[sel & (rk_col == label)])):
                    m = sel & (run_col == run)
                    t0 = created.get((run, entity), float(np.min(t_col[m])))
                    x = t_col[m] - t0
                    keep = x >= -1e-9
                    curves.append((x[keep], v_col[m][keep]))
                    if keep.any():
                        span[entity] = max(span.get(entity, 0.0), float(np.max(x[keep])))
                grid, med, lo, hi = median_band(curves)
                color = ctx.color(label)
                ax.fill_between(grid, _positive(lo), _positive(hi), color=color, alpha=0.18, linewidth=0)
                ax.plot(grid, _positive(med), color=color, linewidth=2.6, marker="o", markersize=3.5,
                        label=f"{label} (median of {len(curves)})")
                ymax = max(ymax, float(np.nanmax(hi)) if len(hi) else 1.0)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_count_fmt)
            ax.set_xlabel("Hours since the post (h)")
            if len(entities) > 1:
                ax.set_title(entity.replace("_", " "))
            ax.set_xlim(left=0)
            # reference lines: the author's followers and multiples of them
            fol_sel = column(focal, "entity") == entity if focal.num_rows else np.zeros(0, bool)
            fvals = column(focal, "followers_initial")[fol_sel] if focal.num_rows else np.zeros(0)
            fvals = fvals[np.isfinite(fvals.astype(float))] if len(fvals) else fvals
            if len(fvals) and np.median(fvals) > 0:
                f0 = float(np.median(fvals))
                for mult, style in ((1, "--"), (10, ":"), (100, ":"), (1000, ":"), (10_000, ":")):
                    if f0 * mult <= max(ymax, f0) * 1.5:
                        ax.axhline(f0 * mult, color="#444444", linestyle=style, linewidth=1.1, alpha=0.7)
                        ax.annotate(f"author's {f0:,.0f}\nfollowers" if mult == 1 else f"{mult:,}×\nfollowers",
                                    (1.0, f0 * mult), xycoords=("axes fraction", "data"), xytext=(5, 0),
                                    textcoords="offset points", ha="left", va="center", fontsize=11,
                                    color="#333333", annotation_clip=False)
        axes[0][0].set_ylabel("Views (impressions, log scale)")
        axes[0][0].legend(loc="best")

        # headline from the focal table
        title = "Reach over time of tracked posts"
        if primary is not None:
            sel = column(focal, "entity") == primary
            ratios = _medians(focal, "reach_ratio", sel)
            views = _medians(focal, "views", sel)
            followers = _medians(focal, "followers_initial", sel)  # the headline post's author, not every tracked one
            order = sorted(ratios, key=lambda lb: -np.nan_to_num(ratios[lb][0], nan=-1))
            if order:
                top = order[0]
                f0 = followers.get(top, (float("nan"), 0))[0]
                hours = f" in {fmt_hours(span[primary])}" if primary in span else ""
                if np.isfinite(ratios[top][0]):
                    title = (f"{top.capitalize()} ranker: {_count(f0)}-follower post reached "
                             f"{fmt_times(ratios[top][0])} its followers{hours} (median of {ratios[top][1]} runs)")
                    others = [f"{fmt_times(ratios[lb][0])} under {lb}" for lb in order[1:3]]
                else:
                    title = (f"{top.capitalize()} ranker: the tracked post got {_count(views[top][0])} views"
                             f"{hours} (median of {views[top][1]} runs)")
                    others = [f"{_count(views[lb][0])} under {lb}" for lb in order[1:3]]
                title += _join_others(others)
        return _finish(fig, ctx, name, title, "Lines: median across replicates; bands: min–max across replicates.")


def source_shares(posts: pa.Table, impressions: pa.Table | None = None) -> dict[str, dict[str, float]]:
    """Ranker -> {segment: share of views}, summed per run then averaged over runs.

    Segments are the posts table's view columns; with a sample of impressions
    (columns ranker, channel[, tracked]) the pool share is split by stage
    (``views_pool_<s>``) in the sampled proportions (tracked posts left out: they
    are always recorded, so they would bias the sample)."""
    out: dict[str, dict[str, float]] = {}
    cols = [column(posts, c).astype(np.float64) for c, _, _ in SOURCES]
    for label, runs in by_ranker(posts).items():
        per_run = []
        for idx in runs:
            sums = np.array([c[idx].sum() for c in cols])
            total = sums.sum()
            if total > 0:
                per_run.append(sums / total)
        mean = np.mean(per_run, axis=0) if per_run else np.zeros(len(SOURCES))
        out[label] = {c: float(v) for (c, _, _), v in zip(SOURCES, mean, strict=True)}
    if impressions is not None and impressions.num_rows:
        sample = impressions.filter(pc.starts_with(impressions["channel"], "for_you_pool_"))
        if "tracked" in sample.column_names:
            sample = sample.filter(pc.invert(pc.fill_null(sample["tracked"], False)))
        counted = sample.group_by(["ranker", "channel"]).aggregate([("channel", "count")]).to_pydict()
        by_label: dict[str, dict[int, int]] = {}
        for rk, ch, n in zip(counted["ranker"], counted["channel"], counted["channel_count"], strict=True):
            by_label.setdefault(str(rk), {})[int(str(ch).rsplit("_", 1)[1])] = int(n)
        for label, shares in out.items():
            stage_counts = by_label.get(label)
            if not stage_counts or shares["views_pool"] <= 0:
                continue
            pool = shares.pop("views_pool")
            total = sum(stage_counts.values())
            split = {f"views_pool_{st}": pool * n / total for st, n in sorted(stage_counts.items())}
            rebuilt: dict[str, float] = {}
            for key, value in shares.items():
                if key == "views_explore":
                    rebuilt.update(split)
                rebuilt[key] = value
            out[label] = rebuilt
    return out


def _segment_style(key: str, max_stage: int, ctx: Context) -> tuple[str, str]:
    for col, label, color in SOURCES:
        if key == col:
            return label, color
    stage = int(key.rsplit("_", 1)[1])
    cmap = matplotlib.colormaps[POOL_CMAP]
    frac = 0.35 + 0.55 * (stage / max(max_stage, 1))
    return f"For You: {ctx.pool_label(stage, 'pool stage')}", matplotlib.colors.to_hex(cmap(frac))


def view_sources(posts: pa.Table, ctx: Context, impressions: pa.Table | None = None,
                 name: str = "view_sources") -> str:
    """Stacked bars: share of impressions by channel for each ranker."""
    with _styled():
        shares = source_shares(posts, impressions)
        labels = ctx.ordered(list(shares))
        fig, axes = _figure()
        ax = axes[0][0]
        keys = list(dict.fromkeys(k for lb in labels for k in shares[lb]))
        stage_keys = [k for k in keys if k.startswith("views_pool_")]
        max_stage = max((int(k.rsplit("_", 1)[1]) for k in stage_keys), default=0)
        # canonical order: following, reshare, pool (stages), explore, other
        canon = [c for c, _, _ in SOURCES]
        keys.sort(key=lambda k: (canon.index("views_pool") + int(k.rsplit("_", 1)[1]) / 100)
                  if k.startswith("views_pool_") else canon.index(k))
        y = np.arange(len(labels))[::-1]
        left = np.zeros(len(labels))
        for key in keys:
            vals = np.array([shares[lb].get(key, 0.0) for lb in labels])
            if not (vals > 0).any():
                continue
            seg_label, color = _segment_style(key, max_stage, ctx)
            ax.barh(y, vals * 100, left=left * 100, height=0.62, color=color, label=seg_label,
                    edgecolor="white", linewidth=1)
            for yi, v, l0 in zip(y, vals, left, strict=True):
                if v >= 0.045:
                    rgb = to_rgb(color)
                    dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.55
                    ax.text((l0 + v / 2) * 100, yi, fmt_pct(v), ha="center", va="center", fontsize=12,
                            color="white" if dark else "#222222", fontweight="bold")
            left += vals
        ax.set_yticks(y, labels)
        _label_color(ax, ctx)
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter())
        ax.set_xlabel("Share of all impressions of the run (%, warm-up included; mean over replicates)")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(3, len(ax.get_legend_handles_labels()[0])),
                  fontsize=11)
        parts = []
        for i, lb in enumerate(labels):
            s = shares[lb]
            followed = s.get("views_following", 0) + s.get("views_reshare", 0)
            pools = sum(v for k, v in s.items() if k.startswith("views_pool"))
            foryou = pools + s.get("views_explore", 0)
            other = s.get("views_other", 0)
            who = f"{lb.capitalize()} ranker" if i == 0 else lb
            if foryou >= max(followed, other):
                detail = f" (traffic pools {fmt_pct(pools)})" if pools > 0 else ""
                parts.append(f"{who}: {fmt_pct(foryou)} of views come from For You{detail}")
            elif followed >= other:
                parts.append(f"{who}: {fmt_pct(followed)} from followed accounts")
            else:
                parts.append(f"{who}: {fmt_pct(other)} from other channels")
        title = "; ".join(parts[:3]) if parts else "Where views come from"
        note = "Pool stages split by the sampled impressions (tracked posts excluded)." if stage_keys else ""
        return _finish(fig, ctx, name, title, note)


def ladder_counts(promotions: pa.Table, posts: pa.Table | None = None) -> dict[str, list[np.ndarray]]:
    """Ranker -> per run, distinct posts reaching each stage: index 0 = posted (if ``posts`` given,
    else NaN), index s+1 = stage s (reviewed at s, or promoted from s-1)."""
    out: dict[str, list[np.ndarray]] = {}
    if promotions.num_rows == 0:
        return out
    stage = column(promotions, "stage").astype(np.int64)
    pid = column(promotions, "post_id").astype(np.int64)
    promoted = column(promotions, "promoted")
    top = int(stage.max()) + 1
    posted = {run: len(idx) for run, (_, idx) in runs_of(posts).items()} if posts is not None else {}
    for run, (label, idx) in runs_of(promotions).items():
        counts = np.full(top + 2, np.nan)
        counts[0] = posted.get(run, np.nan)
        for s in range(top + 1):
            reached = set(pid[idx][stage[idx] == s].tolist())
            if s > 0:
                reached |= set(pid[idx][(stage[idx] == s - 1) & promoted[idx]].tolist())
            counts[s + 1] = len(reached)
        out.setdefault(label, []).append(counts)
    return out


def pool_ladder(promotions: pa.Table, posts: pa.Table, focal: pa.Table, ctx: Context,
                name: str = "pool_ladder") -> str:
    """Left: posts reaching each traffic-pool stage (log). Right: the tracked post's climb over time."""
    with _styled():
        counts = ladder_counts(promotions, posts)
        labels = ctx.ordered(list(counts))
        fig, axes = _figure(1, 2, width_ratios=[1.25, 1])
        ax, ax2 = axes[0]
        if not labels:
            _empty(ax, "no traffic-pool decisions recorded")
            _empty(ax2, "")
            return _finish(fig, ctx, name, "No ranker in this experiment uses traffic pools")
        n_levels = max(len(c) for lb in labels for c in counts[lb])
        # drop the last level where no run reached it
        while n_levels > 2 and all(np.nan_to_num(c[n_levels - 1]) == 0 for lb in labels for c in counts[lb]):
            n_levels -= 1
        width = 0.8 / len(labels)
        for i, lb in enumerate(labels):
            mat = np.vstack([np.pad(c, (0, max(0, n_levels - len(c))), constant_values=0)[:n_levels]
                             for c in counts[lb]])
            med, lo, hi = np.nanmedian(mat, 0), np.nanmin(mat, 0), np.nanmax(mat, 0)
            x = np.arange(n_levels) + (i - (len(labels) - 1) / 2) * width
            ok = med > 0
            ax.bar(x[ok], med[ok], width=width * 0.92, color=ctx.color(lb), alpha=0.9,
                   label=f"{lb} (median of {len(mat)})")
            ax.errorbar(x[ok], med[ok], yerr=[med[ok] - lo[ok], hi[ok] - med[ok]], fmt="none", ecolor="#333333",
                        capsize=3, linewidth=1)
            for xi, m, top in zip(x[ok], med[ok], hi[ok], strict=True):
                ax.annotate(f"{m:,.0f}", (xi, top), xytext=(0, 4), textcoords="offset points", ha="center",
                            va="bottom", fontsize=11)
        ax.set_yscale("log")
        positive = [float(v) for lb in labels for c in counts[lb] for v in c[:n_levels] if v > 0]
        floor = 10 ** np.floor(np.log10(min(positive))) if positive else 1.0
        ax.set_ylim(bottom=min(floor, 1.0) if floor <= 10 else floor)
        ax.yaxis.set_major_formatter(_count_fmt)
        ax.set_xticks(np.arange(n_levels), ["all posts"] + [ctx.pool_label(s).replace(" · ", "\n")
                                                         for s in range(n_levels - 1)])
        ax.set_ylabel("Posts reaching the stage (count, log scale)")
        ax.set_title("How many posts climb each rung")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper right")
        ax.set_ylim(top=ax.get_ylim()[1] * 3)

        # right: the primary tracked post's path
        primary = _primary_entity(focal, ctx)
        created = created_hours(posts, focal)
        climb: dict[str, list[tuple[int, float]]] = {}  # ranker -> (stage reached, hours since post)
        peaks: dict[str, list[int]] = {}  # ranker -> highest stage reached, per run with the post in a pool
        path_runs = 0
        if primary is not None:
            f_run, f_ent, f_pid = column(focal, "run_id"), column(focal, "entity"), column(focal, "post_id")
            p_run, p_pid = column(promotions, "run_id"), column(promotions, "post_id")
            p_stage, p_time, p_prom = column(promotions, "stage"), column(promotions, "time_s"), \
                column(promotions, "promoted")
            for run, ent, pid, rk in zip(f_run, f_ent, f_pid, column(focal, "ranker"), strict=True):
                if ent != primary:
                    continue
                m = (p_run == run) & (p_pid == pid)
                if not m.any():
                    continue
                t0 = created.get((str(run), str(ent)), 0.0)
                steps = sorted((float(t) / 3600 - t0, int(s) + 1) for t, s, pr in
                               zip(p_time[m], p_stage[m], p_prom[m], strict=True) if pr)
                xs, ys = [0.0], [0]
                for t, s in steps:
                    xs.append(t)
                    ys.append(s)
                    climb.setdefault(str(rk), []).append((s, t))
                end = float(np.max(p_time[p_run == run])) / 3600 - t0  # the run's last pool review
                xs.append(max(end, xs[-1]))
                ys.append(ys[-1])
                peaks.setdefault(str(rk), []).append(ys[-1])
                jitter = 0.04 * (path_runs % 5 - 2)
                ax2.step(xs, np.array(ys) + jitter, where="post", color=ctx.color(str(rk)), alpha=0.75,
                         linewidth=2)
                ax2.plot(xs[1:-1], np.array(ys[1:-1]) + jitter, "o", color=ctx.color(str(rk)), markersize=6)
                path_runs += 1
        if path_runs == 0:
            _empty(ax2, "the tracked post never entered a traffic pool")
        else:
            ax2.set_xlim(left=0)
            xmax = ax2.get_xlim()[1]
            for k, (lb, pts) in enumerate(climb.items()):
                n_runs = len(peaks.get(lb, []))
                for s in sorted({s for s, _ in pts}):
                    ts_ = [t for s2, t in pts if s2 == s]
                    med = float(np.median(ts_))
                    right = med > 0.6 * xmax
                    runs_txt = (f" (median, {len(ts_)} of {n_runs} runs)" if len(ts_) > 1 else
                                f" ({len(ts_)} of {n_runs} runs)") if n_runs > 1 else ""
                    ax2.annotate(f"pool {s} at +{med:.1f} h{runs_txt}",
                                 (med, s), xytext=(-8 if right else 8, 10 + 16 * k), textcoords="offset points",
                                 fontsize=11, color=ctx.color(lb), ha="right" if right else "left",
                                 fontweight="bold")
            top_stage = n_levels - 2
            ax2.set_yticks(range(top_stage + 1), [ctx.pool_label(s) for s in range(top_stage + 1)])
            ax2.set_ylim(-0.4, top_stage + 0.6)
            ax2.set_xlabel("Hours since the post (h)")
            ax2.set_ylabel("Traffic-pool stage reached")
            ax2.set_title(f"{(primary or '').replace('_', ' ').capitalize()}: its climb, per run")

        lb0 = labels[0]
        mat = np.vstack([c[:n_levels] for c in counts[lb0] if len(c) >= n_levels] or [np.zeros(n_levels)])
        med = np.nanmedian(mat, 0)
        deepest = int(max((s for s in range(1, n_levels) if med[s] > 0), default=1))
        title = f"{lb0.capitalize()} ranker: only {med[deepest]:,.0f}"
        if np.isfinite(med[0]) and med[0] > 0:
            title += f" of {med[0]:,.0f} posts ({fmt_pct(med[deepest] / med[0])})"
        else:
            title += " posts"
        title += f" reach pool {deepest - 1}"
        title += f" (median of {len(counts[lb0])} runs)"
        pretty = (primary or "").replace("_", " ")
        if primary is not None and climb.get(lb0):
            runs_peaks = peaks[lb0]
            best = max(runs_peaks)
            typical = int(np.floor(np.median(runs_peaks)))
            t_best = float(np.median([t for s, t in climb[lb0] if s == best]))
            k = sum(p == best for p in runs_peaks)
            if k * 2 > len(runs_peaks) or typical == best:
                title += f"; {pretty} reached pool {best} in {t_best:.1f} h ({k} of {len(runs_peaks)} runs)"
            else:
                title += (f"; {pretty} peaked at pool {typical} (median run), pool {best} at best "
                          f"({k} of {len(runs_peaks)} runs, {t_best:.1f} h)")
        elif primary is not None and peaks.get(lb0):
            title += f"; {pretty} was never promoted"
        return _finish(fig, ctx, name, title, "Bars: median across replicates, whiskers: min–max. "
                       "A post reaches stage s when it is reviewed there (or promoted from s−1).")


def views_vs_followers(posts: pa.Table, ctx: Context, max_points: int = 50_000,
                       name: str = "views_vs_followers") -> str:
    """Log-log density of post views against the author's followers, with the fitted slope per ranker."""
    with _styled():
        groups = by_ranker(posts)
        labels = ctx.ordered(list(groups)) or ["(no posts)"]
        fig, axes = _figure(1, min(len(labels), 4), sharex=True, sharey=True)
        fol_all, views_all = column(posts, "author_followers_at_post"), column(posts, "views")
        rng = streams(ctx.seed, 0)["bootstrap"]  # which posts are drawn when there are too many
        slopes: dict[str, tuple[float, float, float]] = {}
        xmax = max(float(np.max(fol_all)) if len(fol_all) else 1, 1) + 1
        ymax = max(float(np.max(views_all)) if len(views_all) else 1, 1) + 1
        lim = (0.8, max(xmax, ymax) * 1.5)
        for ax, lb in zip(axes[0], labels[:4], strict=False):
            if lb not in groups:
                _empty(ax, "no posts")
                continue
            idx = np.concatenate(groups[lb])
            run_slopes = [metrics.log_slope(fol_all[i], views_all[i]) for i in groups[lb]]
            if len(idx) > max_points:
                idx = np.sort(rng.choice(idx, max_points, replace=False))
            x, y = fol_all[idx] + 1.0, views_all[idx] + 1.0
            rgb = np.array(to_rgb(ctx.color(lb)))
            cmap = LinearSegmentedColormap.from_list(lb, np.vstack([0.78 + 0.22 * rgb, rgb, 0.45 * rgb]), N=256)
            ax.hexbin(x, y, xscale="log", yscale="log", bins="log", gridsize=40, mincnt=1, cmap=cmap,
                      extent=(np.log10(lim[0]), np.log10(lim[1]), np.log10(lim[0]), np.log10(lim[1])),
                      linewidths=0.2)
            lx, ly = np.log10(x), np.log10(y)
            if len(lx) >= 2 and np.ptp(lx) > 0:
                b, a = np.polyfit(lx, ly, 1)
                gx = np.linspace(lx.min(), lx.max(), 50)
                finite = [s for s in run_slopes if np.isfinite(s)]
                med = float(np.median(finite)) if finite else float(b)
                rng_txt = f" (runs {min(finite):.2f} to {max(finite):.2f})" if len(finite) > 1 else ""
                ax.plot(10 ** gx, 10 ** (a + b * gx), color="#111111", linewidth=2.2,
                        label=f"fit: views ∝ followers^{b:.2f}")
                slopes[lb] = (med, min(finite, default=med), max(finite, default=med))
                ax.set_title(f"{lb}: slope {med:.2f}{rng_txt}", color=ctx.color(lb))
            diag = np.array(lim)
            ax.plot(diag, diag, color="#666666", linestyle="--", linewidth=1, label="views = followers")
            ax.plot(diag, diag * 100, color="#666666", linestyle=":", linewidth=1, label="views = 100× followers")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(*lim)
            ax.set_ylim(*lim)
            ax.xaxis.set_major_formatter(_count_fmt)
            ax.yaxis.set_major_formatter(_count_fmt)
            if not ax.get_title(loc="left"):
                ax.set_title(lb, color=ctx.color(lb))
            ax.set_xlabel("Author's followers when posting (+1, log)")
            ax.legend(loc="lower right", fontsize=10)
        axes[0][0].set_ylabel("Views of the post (impressions +1, log)")
        if not slopes:
            title = "Views against author followers"
        elif len(slopes) == 1:
            lb, (s, _, _) = next(iter(slopes.items()))
            title = f"{lb.capitalize()} ranker: views grow as followers^{s:.2f} (median slope over runs)"
        else:
            order = sorted(slopes, key=lambda k: -slopes[k][0])
            hi, lo = order[0], order[-1]
            if slopes[hi][0] - slopes[lo][0] > 0.25:
                title = (f"Follower count drives views under {hi} (slope {slopes[hi][0]:.2f}) far more than under "
                         f"{lo} (slope {slopes[lo][0]:.2f})")
            else:
                title = "Follower count shapes views alike across rankers (slopes " + ", ".join(
                    f"{k} {slopes[k][0]:.2f}" for k in order) + ")"
        return _finish(fig, ctx, name, title, "Log-log density of posts (darker = more posts, hexagons with ≥1 "
                       f"post); slope of log10(1+views) on log10(1+followers), median over runs; ≤{max_points:,} "
                       "posts shown per ranker.")


def exposure_by_creator(posts: pa.Table, idx: np.ndarray) -> np.ndarray:
    """Views summed by author over the rows ``idx`` (authors who posted)."""
    authors = column(posts, "author_id")[idx].astype(np.int64)
    views = column(posts, "views")[idx].astype(np.float64)
    _, inv = np.unique(authors, return_inverse=True)
    return np.bincount(inv, weights=views)


def inequality(posts: pa.Table, ctx: Context, name: str = "inequality") -> str:
    """Lorenz curves and Gini of views over posts and over creators, per ranker."""
    with _styled():
        groups = by_ranker(posts)
        labels = ctx.ordered(list(groups))
        fig, axes = _figure(1, 2, sharey=True)
        views = column(posts, "views").astype(np.float64)
        summary: dict[str, dict[str, float]] = {}
        panels = (("posts", "Views over posts", "Share of posts, least viewed first (%)"),
                  ("creators", "Views over creators (exposure)", "Share of creators, least viewed first (%)"))
        for ax, (kind, title, xlabel) in zip(axes[0], panels, strict=True):
            for lb in labels:
                curves, ginis, tops = [], [], []
                for idx in groups[lb]:
                    v = views[idx] if kind == "posts" else exposure_by_creator(posts, idx)
                    curves.append(metrics.lorenz(v)[1])
                    ginis.append(metrics.gini(v))
                    tops.append(metrics.top_share(v, 0.1))
                grid = np.linspace(0, 1, 101)
                mat = np.vstack(curves)
                g = float(np.mean(ginis))
                summary.setdefault(lb, {})[f"gini_{kind}"] = g
                summary[lb][f"top10_{kind}"] = float(np.nanmean(tops))
                color = ctx.color(lb)
                ax.fill_between(grid * 100, mat.min(0) * 100, mat.max(0) * 100, color=color, alpha=0.18, linewidth=0)
                ax.plot(grid * 100, np.median(mat, 0) * 100, color=color, linewidth=2.6,
                        label=f"{lb}: Gini {g:.2f}, top 10% hold {fmt_pct(summary[lb][f'top10_{kind}'])}")
            ax.plot([0, 100], [0, 100], color="#888888", linestyle="--", linewidth=1, label="perfect equality")
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 100)
            ax.xaxis.set_major_formatter(PercentFormatter())
            ax.yaxis.set_major_formatter(PercentFormatter())
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.legend(loc="upper left", fontsize=11)
        axes[0][0].set_ylabel("Share of all views (%)")
        if not summary:
            title = "Concentration of views"
        else:
            order = sorted(summary, key=lambda k: -summary[k]["gini_posts"])
            hi = order[0]
            title = (f"{hi.capitalize()} ranker concentrates views most: the top 10% of posts take "
                     f"{fmt_pct(summary[hi]['top10_posts'])} (Gini {summary[hi]['gini_posts']:.2f})")
            if len(order) > 1:
                lo = order[-1]
                title += (f" vs {fmt_pct(summary[lo]['top10_posts'])} under {lo} "
                          f"(Gini {summary[lo]['gini_posts']:.2f})")
        return _finish(fig, ctx, name, title, "Lines: median Lorenz curve across replicates; bands: min–max; "
                       "Gini: mean over replicates. Posts of the warm-up included.")


def _series(timeseries: pa.Table, kind: str, metric: str) -> pa.Table:
    return timeseries.filter(pc.and_(pc.equal(timeseries["kind"], kind), pc.equal(timeseries["metric"], metric)))


def _entity_curves(ts: pa.Table, entity: str, run_ids: dict[str, list[str]] | None = None
                   ) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Ranker -> [(time_h, value) per run] for one entity (``run_ids`` is filled with the runs, same order)."""
    ent, run, rk = column(ts, "entity"), column(ts, "run_id"), column(ts, "ranker")
    t, v = column(ts, "time_h"), column(ts, "value")
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for r in dict.fromkeys(map(str, run[ent == entity])):
        m = (ent == entity) & (run == r)
        out.setdefault(str(rk[m][0]), []).append((t[m], v[m]))
        if run_ids is not None:
            run_ids.setdefault(str(rk[m][0]), []).append(r)
    return out


def _draw_bands(ax: Any, curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], ctx: Context,
                t_min: float = 0.0) -> None:
    for lb in ctx.ordered(list(curves)):
        clipped = []
        for x, y in curves[lb]:
            keep = x >= t_min - 1e-9
            if keep.any():
                clipped.append((x[keep], y[keep]))
        if not clipped:
            continue
        grid, med, lo, hi = median_band(clipped)
        color = ctx.color(lb)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.18, linewidth=0)
        ax.plot(grid, med, color=color, linewidth=2.6, label=f"{lb} (median of {len(clipped)})")


def follower_growth(timeseries: pa.Table, ctx: Context, name: str = "follower_growth") -> str:
    """Followers of tracked accounts over time, per ranker."""
    with _styled():
        ts = _series(timeseries, "account", "followers")
        entities = list(dict.fromkeys(map(str, column(ts, "entity"))))[:4] or ["(no tracked account)"]
        fig, axes = _figure(1, len(entities))
        gains: dict[str, dict[str, tuple[float, float, int]]] = {}
        for ax, entity in zip(axes[0], entities, strict=True):
            curves = _entity_curves(ts, entity)
            if not curves:
                _empty(ax, "no tracked accounts")
                continue
            _draw_bands(ax, curves, ctx)
            for lb, cs in curves.items():
                first = [float(y[np.argmin(np.abs(x))]) for x, y in cs]
                last = [float(y[np.argmax(x)]) for x, y in cs]
                gains.setdefault(entity, {})[lb] = (float(np.median(np.subtract(last, first))),
                                                    float(np.median(first)), len(cs))
            if len(entities) > 1:
                ax.set_title(f"@{entity}")
            ax.set_xlabel("Hours since the end of warm-up (h)")
            ax.set_xlim(left=0)
            ax.yaxis.set_major_formatter(_count_fmt)
            ax.legend(loc="upper left")
        axes[0][0].set_ylabel("Followers (accounts)")
        title = "Follower growth of tracked accounts"
        if gains:
            entity = entities[0]
            g = gains.get(entity, {})
            order = sorted(g, key=lambda k: -g[k][0])
            if order:
                top = order[0]
                gain, start, n = g[top]
                rel = f" ({fmt_times((start + gain) / start)} its start)" if start > 0 else ""
                title = f"@{entity} gained {gain:+,.0f} followers{rel} under {top} (median of {n} runs)"
                title += _join_others([f"{g[lb][0]:+,.0f} under {lb}" for lb in order[1:3]])
        return _finish(fig, ctx, name, title, "Lines: median across replicates; bands: min–max across replicates.")


def sellout_hours(curves: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """Per run: first time (h) the inventory is at or below zero (NaN if never)."""
    out = []
    for x, y in curves:
        order = np.argsort(x)
        hit = np.flatnonzero(y[order] <= 0)
        out.append(float(x[order][hit[0]]) if len(hit) else float("nan"))
    return out


def inventory(timeseries: pa.Table, ctx: Context, sellouts: dict[str, dict[str, float]] | None = None,
              name: str = "inventory") -> str:
    """Units in stock of each product over time, per ranker, with sell-out times marked.

    ``sellouts`` (product -> run_id -> hours from the end of warm-up) gives exact
    sell-out times where known; otherwise the first snapshot with no stock is used."""
    with _styled():
        ts_inv = _series(timeseries, "product", "inventory")
        ts_sold = _series(timeseries, "product", "sold")
        entities = list(dict.fromkeys(map(str, column(ts_inv, "entity"))))[:4] or ["(no product)"]
        fig, axes = _figure(1, len(entities))
        facts: list[str] = []
        drew_sellout, drew_bands = False, False
        for ax, entity in zip(axes[0], entities, strict=True):
            run_ids: dict[str, list[str]] = {}
            curves = _entity_curves(ts_inv, entity, run_ids)
            if not curves:
                _empty(ax, "no products in this experiment")
                continue
            sold = _entity_curves(ts_sold, entity)
            _draw_bands(ax, curves, ctx)
            drew_bands |= any(len(cs) > 1 for cs in curves.values())
            stock = float(np.median([y[np.argmin(np.abs(x))] + (sold[lb][i][1][np.argmin(np.abs(sold[lb][i][0]))]
                                                               if lb in sold and i < len(sold[lb]) else 0)
                                     for lb, cs in curves.items() for i, (x, y) in enumerate(cs)]))
            ax.axhline(0, color="#444444", linewidth=1)
            per: list[tuple[str, float, int, int, float]] = []
            for lb in ctx.ordered(list(curves)):
                exact = (sellouts or {}).get(entity, {})
                hours = [exact.get(r, h) for r, h in zip(run_ids[lb], sellout_hours(curves[lb]), strict=True)]
                done = [h for h in hours if np.isfinite(h)]
                sold_end = [float(y[np.argmax(x)]) for x, y in sold.get(lb, [])]
                med_sold = float(np.median(sold_end)) if sold_end else float("nan")
                if done:
                    drew_sellout = True
                    med = float(np.median(done))
                    ax.axvline(med, color=ctx.color(lb), linestyle="--", linewidth=1.5)
                    ax.annotate(f"{lb}: sold out at {med:.1f} h\n({len(done)} of {len(hours)} runs)", (med, stock),
                                xytext=(5, -5), textcoords="offset points", va="top", fontsize=11,
                                color=ctx.color(lb))
                per.append((lb, float(np.median(done)) if done else float("nan"), len(done), len(hours), med_sold))
            if len(entities) > 1:
                ax.set_title(entity.replace("_", " "))
            ax.set_xlabel("Hours since the end of warm-up (h)")
            ax.set_ylabel("Units in stock")
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=-0.03 * max(stock, 1), top=max(stock, 1) * 1.08)
            ax.legend(loc="lower left")
            pretty = entity.replace("_", " ").capitalize()
            sold_out = [p for p in per if p[2] > 0]
            if sold_out:
                fast = min(sold_out, key=lambda p: p[1])
                fact = (f"{pretty} sold out {fmt_hours(fast[1])} into the run under {fast[0]} "
                        f"({fast[2]} of {fast[3]} runs)")
                rest = [f"{_count(p[4])} of {stock:,.0f} units sold under {p[0]}" for p in per if p[2] == 0]
                facts.append(fact + _join_others(rest[:2]))
            elif per:
                order = sorted(per, key=lambda p: -np.nan_to_num(p[4]))
                best = order[0]
                end = max((float(np.max(x)) for cs in curves.values() for x, _ in cs), default=float("nan"))
                facts.append(f"{pretty} did not sell out: {_count(best[4])} of {stock:,.0f} units sold by "
                             f"{fmt_hours(end)} under {best[0]} (median of {best[3]} runs)"
                             + _join_others([f"{_count(p[4])} under {p[0]}" for p in order[1:3]]))
        title = "; ".join(facts[:2]) if facts else "Inventory of products"
        return _finish(fig, ctx, name, title, inventory_note(drew_bands, drew_sellout))


def inventory_note(bands: bool, sellout: bool) -> str:
    """What the inventory figure draws, and only that."""
    note = "Lines: median across replicates" + ("; bands: min–max" if bands else "")
    return note + ("; dashed: median sell-out time over the runs that sold out." if sellout else
                   ". No run sold out, so no sell-out line.")


def sweep(runs: pa.Table, x: str, metric: str, ctx: Context, name: str | None = None) -> str:
    """``metric`` (a runs column) against a swept parameter ``x``, mean and 95% CI per ranker."""
    with _styled():
        name = name or f"sweep_{x.removeprefix('sweep_')}_{metric}"
        label, kind = METRIC_INFO.get(metric, (metric.replace("_", " "), "num"))
        fig, axes = _figure()
        ax = axes[0][0]
        xs, ys, rk = column(runs, x), column(runs, metric), column(runs, "ranker")
        change: dict[str, tuple[float, float, float, float]] = {}
        for lb in ctx.ordered(list(map(str, rk))):
            m = rk == lb
            pts = sorted(set(float(v) for v in xs[m] if np.isfinite(float(v))))
            stats = np.array([metrics.mean_ci(ys[m & (xs == p)], limits=metrics.bounds(metric))
                              for p in pts]).reshape(-1, 3)
            if not len(pts):
                continue
            color = ctx.color(lb)
            ax.plot(pts, stats[:, 0], "-o", color=color, linewidth=2.4, markersize=6, label=lb)
            ax.fill_between(pts, stats[:, 1], stats[:, 2], color=color, alpha=0.18, linewidth=0)
            ok = np.isfinite(stats[:, 0])
            if ok.sum() >= 2:
                i0, i1 = np.flatnonzero(ok)[[0, -1]]
                change[lb] = (pts[i0], stats[i0, 0], pts[i1], stats[i1, 0])
        xvals = xs[np.isfinite(xs.astype(float))].astype(float)
        if len(xvals) and xvals.min() > 0 and xvals.max() / xvals.min() >= 20:
            ax.set_xscale("log")
        yvals = ys[np.isfinite(ys.astype(float))].astype(float)
        if kind in ("ratio", "hours") and len(yvals) and yvals.min() > 0 and yvals.max() / yvals.min() >= 100:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_count_fmt)
        if kind == "share":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        pretty_x = x.removeprefix("sweep_").replace("_", " ")
        ax.set_xlabel(pretty_x)
        unit = {"share": " (%)", "hours": " (h)", "min": " (min)", "ratio": " (× followers)"}.get(kind, "")
        ax.set_ylabel(label + unit)
        ax.legend(loc="best")
        if change:
            lb = max(change, key=lambda k: abs(change[k][3] - change[k][1]))
            x0, y0, x1, y1 = change[lb]
            verb = "rises" if y1 > y0 else "falls" if y1 < y0 else "stays"
            phrase = METRIC_PHRASE.get(metric, label)
            title = (f"{phrase[0].upper() + phrase[1:]} {verb} from {fmt_metric(y0, kind)} to "
                     f"{fmt_metric(y1, kind)} as {pretty_x} goes {x0:g} → {x1:g} under {lb}")
        else:
            title = f"{label} against {pretty_x}"
        return _finish(fig, ctx, name, title, "Points: mean over replicates; band: 95% t-interval"
                       + ("." if ctx.replicates >= metrics.MIN_REPLICATES else
                          f" (none: {ctx.replicates} replicates, fewer than {metrics.MIN_REPLICATES})."))


def by_ranker_ci(runs: pa.Table, metric: str, ctx: Context, name: str) -> str:
    """One metric per ranker: every replicate as a dot, the mean with its 95% t-interval as a bar."""
    with _styled():
        fig, axes = _figure()
        ax = axes[0][0]
        ys, rk = column(runs, metric).astype(float), column(runs, "ranker")
        labels = ctx.ordered(list(map(str, rk)))
        means = {}
        for i, lb in enumerate(labels):
            y = ys[(rk == lb) & np.isfinite(ys)]
            if not len(y):
                continue
            mean, lo, hi = metrics.mean_ci(y, limits=metrics.bounds(metric))
            means[lb] = mean
            color = ctx.color(lb)
            ax.scatter(np.full(len(y), i) + np.linspace(-0.12, 0.12, len(y)), y, color=color, alpha=0.55, s=22)
            ax.errorbar([i + 0.3], [mean], yerr=[[mean - lo], [hi - mean]] if np.isfinite(lo) else None, fmt="o",
                        color=color, markersize=8, capsize=6, linewidth=2.2)
        positive = ys[np.isfinite(ys) & (ys > 0)]
        if len(positive) and positive.max() / positive.min() >= 30 and (ys[np.isfinite(ys)] > 0).all():
            ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel(metric)
        title = metric
        if len(means) >= 2 and ctx.baseline in means:
            other = next(lb for lb in means if lb != ctx.baseline)
            a, b = means[other], means[ctx.baseline]
            ratio = f" ({a / b:,.1f}x)" if b and np.isfinite(a / b) and a / b > 0 else ""
            title = f"{metric}: {a:,.3g} under {other} against {b:,.3g} under {ctx.baseline}{ratio}"
        return _finish(fig, ctx, name, title, "Dots: replicates; bars: mean and 95% t-interval"
                       + ("." if ctx.replicates >= metrics.MIN_REPLICATES else
                          f" (none: {ctx.replicates} replicates, fewer than {metrics.MIN_REPLICATES})."))


def forest(runs: pa.Table, ctx: Context, summary: Summary | None = None, metric_names: Sequence[str] | None = None,
           name: str = "paired_differences") -> str:
    """Paired differences (ranker − baseline, per replicate) of headline metrics with bootstrap 95% CIs
    from ``summary`` (:func:`summary_rows` of ``summary.parquet``; computed from ``runs`` as the runner
    does when None), so the figure prints the intervals the summary and the report print.

    One row per metric, each on its own axis (units differ); the interval is
    written out on the right.  Below :data:`sim.analysis.metrics.MIN_REPLICATES` pairs there are no intervals
    and the headline counts nothing."""
    with _styled():
        labels = ctx.ordered(list(map(str, column(runs, "ranker"))))
        baseline = ctx.baseline if ctx.baseline in labels else (labels[-1] if labels else "")
        if summary is None:
            summary = seeded_summary(runs, labels, baseline, ctx.seed)
        rows = paired_differences(runs, labels, baseline, summary, metric_names)
        shown = [m for m in dict.fromkeys(r["metric"] for r in rows)
                 if any(r["n"] > 0 and np.isfinite(r["mean"]) for r in rows if r["metric"] == m)]
        others = [lb for lb in labels if lb != baseline]
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        if not shown:
            _empty(fig.subplots(), "needs two rankers with paired replicates")
            return _finish(fig, ctx, name, "No paired differences to show")
        grid = fig.subplots(len(shown), 2, squeeze=False, width_ratios=[2.0, 1.15], gridspec_kw={"wspace": 0.01})
        significant: list[tuple[float, dict[str, Any]]] = []
        total = 0
        for (ax, tax), metric in zip(grid, shown, strict=True):
            mlabel, kind = METRIC_INFO.get(metric, (metric.replace("_", " "), "num"))
            scale = 100.0 if kind == "share" else 1.0
            ax.axvline(0, color="#444444", linewidth=1.2)
            tax.axis("off")
            span = 0.0
            for j, lb in enumerate(others):
                r = next((r for r in rows if r["ranker"] == lb and r["metric"] == metric), None)
                if r is None or r["n"] == 0 or not np.isfinite(r["mean"]):
                    continue
                lo = r["lo"] if np.isfinite(r["lo"]) else r["mean"]
                hi = r["hi"] if np.isfinite(r["hi"]) else r["mean"]
                ax.errorbar([r["mean"] * scale], [-j], xerr=[[(r["mean"] - lo) * scale], [(hi - r["mean"]) * scale]],
                            fmt="o", color=ctx.color(lb), markersize=8, capsize=4, linewidth=2.2)
                span = max(span, abs(lo * scale), abs(hi * scale))
                total += 1
                if np.isfinite(r["lo"]) and (r["lo"] > 0 or r["hi"] < 0):
                    width = max(abs(r["hi"] - r["lo"]), 1e-12)
                    significant.append((abs(r["mean"]) / width, r))
                ci = f"  [{fmt_metric(r['lo'], kind, True)}, {fmt_metric(r['hi'], kind, True)}]" \
                    if np.isfinite(r["lo"]) else ""
                tax.text(0.02, (-j + len(others) - 0.5) / len(others), fmt_metric(r["mean"], kind, True) + ci,
                         transform=tax.transAxes, ha="left", va="center", fontsize=11, color=ctx.color(lb),
                         fontweight="bold")
            ax.set_yticks([])
            ax.set_ylim(-len(others) + 0.4, 0.6)
            ax.set_ylabel(mlabel, rotation=0, ha="right", va="center", fontsize=11.5)
            ax.grid(axis="y", visible=False)
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="x", labelsize=10)
            span = span * 1.12 if span > 0 else 1.0
            ax.set_xlim(-span, span)
            unit = {"share": " pp", "hours": " h", "min": " min", "ratio": "×"}.get(kind, "")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: f"{v:+g}{u}" if v else "0"))
        if len(others) > 1:
            handles = [matplotlib.lines.Line2D([], [], color=ctx.color(lb), marker="o", linewidth=2, label=lb)
                       for lb in others]
            grid[0][0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=len(others))
        comp = " and ".join(others)
        pairs = max((r["n"] for r in rows), default=0)
        if pairs < metrics.MIN_REPLICATES:
            title = (f"{comp.capitalize()} vs {baseline}, paired by replicate: n = {pairs}, too few replicates "
                     f"for intervals (at least {metrics.MIN_REPLICATES}); mean differences only")
            first = next((r for r in rows if r["metric"] in shown and np.isfinite(r["mean"])), None)
            if first is not None:
                mlabel, kind = METRIC_INFO.get(first["metric"], (first["metric"], "num"))
                phrase = METRIC_PHRASE.get(first["metric"], mlabel[0].lower() + mlabel[1:])
                title += f"; {phrase} {fmt_metric(first['mean'], kind, True)}"
        else:
            title = (f"{comp.capitalize()} vs {baseline}, paired by replicate: {len(significant)} of {total} "
                     f"headline metrics differ (95% CI excludes zero)")
        if significant:
            r = significant[0][1]  # the first in headline order: the experiment's focal story
            mlabel, kind = METRIC_INFO.get(r["metric"], (r["metric"], "num"))
            phrase = METRIC_PHRASE.get(r["metric"], mlabel[0].lower() + mlabel[1:])
            title += f"; {phrase} {fmt_metric(r['mean'], kind, True)}"
            if len(others) > 1:
                title += f" ({r['ranker']})"
        bars = (f"bars: 95% percentile-bootstrap CI (2,000 resamples, the experiment's bootstrap stream, seed "
                f"{ctx.seed}; as in summary.parquet)" if pairs >= metrics.MIN_REPLICATES else
                f"no intervals below {metrics.MIN_REPLICATES} replicates")
        return _finish(fig, ctx, name, title, f"Dots: mean of per-replicate differences (ranker − {baseline}); "
                       f"{bars}. Shares in percentage points (pp).")


def bench_scaling(rows: list[dict], stem: Path) -> str:
    """``sim bench --scaling``: impressions/s and peak memory against users (PNG + SVG)."""
    users = np.array([r["users"] for r in rows], dtype=float)
    fig, axes = _figure(1, 2)
    left, right = axes[0]
    for key, label in (("impressions_per_s", "engine, content ranker"),
                       ("follower_impressions_per_s", "engine, follower ranker"),
                       ("floor_impressions_per_s", "floor kernel")):
        left.plot(users, [r[key] for r in rows], marker="o", label=label)
    left.set_xscale("log")
    left.set_xlabel("Users")
    left.set_ylabel("Impressions per second (one process)")
    left.legend(frameon=False)
    right.plot(users, [r["peak_rss_mb"] for r in rows], marker="o", color="#555555")
    right.set_xscale("log")
    right.set_xlabel("Users")
    right.set_ylabel("Peak memory (MB)")
    flat = rows[-1]["impressions_per_s"] / max(rows[0]["impressions_per_s"], 1)
    title = (f"Engine throughput at {int(users[-1]):,} users is {flat:.2f}x that at {int(users[0]):,}; "
             f"peak memory {rows[-1]['peak_rss_mb']:,.0f} MB")
    fig.suptitle(title, fontsize=15, fontweight="bold", x=0.01, ha="left")
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=200)
    fig.savefig(stem.with_suffix(".svg"))
    return title
