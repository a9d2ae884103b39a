"""Concentration: Lorenz curves and Gini of views over posts and over creators."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from matplotlib.ticker import PercentFormatter

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import Context, finish, new_figure, styled
from sim.report.formatting import fmt_pct

PANELS = (("posts", "Views over posts", "Share of posts, least viewed first (%)"),
          ("creators", "Views over creators (exposure)", "Share of creators, least viewed first (%)"))


def inequality(posts: pa.Table, ctx: Context, name: str = "inequality") -> str:
    """Lorenz curves and Gini of views over posts and over creators, per ranker; returns the headline."""
    with styled():
        groups = tables.by_ranker(posts)
        labels = ctx.ordered(list(groups))
        fig, axes = new_figure(1, 2, sharey=True)
        spread: dict[str, dict[str, float]] = {}  # ranker -> gini_<over>, top10_<over>
        grid = np.linspace(0, 1, 101)
        for ax, (over, title, xlabel) in zip(axes[0], PANELS, strict=True):
            for lb in labels:
                mat, gini, top10 = tables.lorenz_by_run(posts, groups[lb], over)
                spread.setdefault(lb, {})[f"gini_{over}"] = gini
                spread[lb][f"top10_{over}"] = top10
                color = ctx.color(lb)
                ax.fill_between(grid * 100, mat.min(0) * 100, mat.max(0) * 100, color=color, alpha=0.18, linewidth=0)
                ax.plot(grid * 100, np.median(mat, 0) * 100, color=color, linewidth=2.6,
                        label=f"{lb}: Gini {gini:.2f}, top 10% hold {fmt_pct(top10)}")
            ax.plot([0, 100], [0, 100], color="#888888", linestyle="--", linewidth=1, label="perfect equality")
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 100)
            ax.xaxis.set_major_formatter(PercentFormatter())
            ax.yaxis.set_major_formatter(PercentFormatter())
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.legend(loc="upper left", fontsize=11)
        axes[0][0].set_ylabel("Share of all views (%)")
        return finish(fig, ctx, name, headlines.inequality(spread), "Lines: median Lorenz curve across replicates; "
                      "bands: min–max; Gini: mean over replicates. Posts of the warm-up included.")
