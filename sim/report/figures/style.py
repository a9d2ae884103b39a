"""What every figure shares: colours, fonts, the 16:9 canvas, the footnote and saving.

Conventions: one fixed colour per ranker label (the label's position in the
experiment file picks it from :data:`PALETTE`); lines are medians over
replicates with a min-max band; log axes where tails are heavy; a footnote
names the experiment, its seed and the number of replicates.
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

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sim.analysis.tables import Curve, median_band  # noqa: E402

# Okabe-Ito, colour-blind safe; ranker i in the experiment file gets PALETTE[i].  Rankers take the
# hues; channels (SOURCES, pool stages) take greys and purples, which no ranker uses, so a colour in a
# deck means one thing (tests/test_plots.py checks the hues stay apart).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
FIGSIZE = (12.8, 7.2)  # inches: 16:9
DPI = 200
STYLE: dict[str, Any] = {
    "font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 12, "ytick.labelsize": 12,
    "legend.fontsize": 12, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.6, "svg.fonttype": "none",
    "axes.titleweight": "bold", "axes.titlelocation": "left",
}  # fmt: skip

# View sources: posts-table column (as sim.analysis.tables.VIEW_SOURCES), legend label, colour
# (follow graph: greys; For You: purples and violet).
SOURCES = (
    ("views_following", "Following feed", "#3A3A3A"),
    ("views_reshare", "Reshares by followed accounts", "#8C8C8C"),
    ("views_pool", "For You: traffic pools", "#6A51A3"),
    ("views_explore", "For You: interest retrieval", "#9C27B0"),
    ("views_other", "Other (sound pages, baseline and custom rankers)", "#D9D9D9"),
)
#: Colour map of the pool stages (light = stage 0); purple, like the pools' SOURCES colour.
POOL_CMAP = "Purples"

count_format = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")


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
        """The ranker's colour: its position in the experiment file, else one picked from its name."""
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
        """The experiment, its scale, seed and revision, then ``note`` on a line of its own."""
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


@contextmanager
def styled() -> Iterator[None]:
    """Draw inside with the deck's fonts and grid (:data:`STYLE`)."""
    with matplotlib.rc_context(cast(Any, STYLE)):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, np.ndarray]:
    """A 16:9 figure and its axes, shape (nrows, ncols)."""
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def finish(fig: Figure, ctx: Context, name: str, title: str, note: str = "") -> str:
    """Headline, footnote, save ``<name>.png`` and ``<name>.svg`` in ``ctx.plots_dir``; return the title."""
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


def positive(a: np.ndarray) -> np.ndarray:
    """NaN where not positive (log axes cannot show zeros)."""
    return np.where(a > 0, a, np.nan)


def empty(ax: Any, text: str) -> None:
    """An axis that says why it has nothing to show."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=13, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def color_labels(ax: Any, ctx: Context, which: str = "y") -> None:
    """Tick labels that name a ranker take its colour, in bold."""
    labels = ax.get_yticklabels() if which == "y" else ax.get_xticklabels()
    for t in labels:
        if t.get_text() in ctx.labels:
            t.set_color(ctx.color(t.get_text()))
            t.set_fontweight("bold")


def draw_bands(ax: Any, curves: dict[str, list[Curve]], ctx: Context, t_min: float = 0.0) -> None:
    """Per ranker, the median of its runs' curves as a line and their min-max as a band (from ``t_min`` h)."""
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


def primary_entity(entities: list[str], ctx: Context) -> str | None:
    """The tracked entity a headline is about: the experiment's focal one if tracked, else the first."""
    if not entities:
        return None
    return ctx.focal if ctx.focal in entities else entities[0]


def run_note(replicates: int, min_replicates: int, what: str) -> str:
    """'<what> 95% t-interval.', or why there is none below ``min_replicates`` replicates."""
    return what + ("." if replicates >= min_replicates else
                   f" (none: {replicates} replicates, fewer than {min_replicates}).")
