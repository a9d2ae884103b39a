"""View sources: the share of impressions each channel brings, per ranker."""

from __future__ import annotations

import matplotlib
import numpy as np
import pyarrow as pa
from matplotlib.colors import to_rgb
from matplotlib.ticker import PercentFormatter

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import POOL_CMAP, SOURCES, Context, color_labels, finish, new_figure, styled
from sim.report.formatting import fmt_pct


def view_sources(posts: pa.Table, ctx: Context, impressions: pa.Table | None = None,
                 name: str = "view_sources") -> str:
    """Stacked bars: share of impressions by channel for each ranker (pool stages split by the
    sampled ``impressions`` where given); returns the headline."""
    with styled():
        shares = tables.source_shares(posts, impressions)
        labels = ctx.ordered(list(shares))
        fig, axes = new_figure()
        ax = axes[0][0]
        keys = _segments(shares, labels)
        max_stage = max((int(k.rsplit("_", 1)[1]) for k in keys if k.startswith("views_pool_")), default=0)
        y = np.arange(len(labels))[::-1]
        left = np.zeros(len(labels))
        for key in keys:
            vals = np.array([shares[lb].get(key, 0.0) for lb in labels])
            if not (vals > 0).any():
                continue
            seg_label, color = _segment_style(key, max_stage, ctx)
            ax.barh(y, vals * 100, left=left * 100, height=0.62, color=color, label=seg_label,
                    edgecolor="white", linewidth=1)
            rgb = to_rgb(color)
            dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 0.55
            for yi, v, l0 in zip(y, vals, left, strict=True):
                if v >= 0.045:
                    ax.text((l0 + v / 2) * 100, yi, fmt_pct(v), ha="center", va="center", fontsize=12,
                            color="white" if dark else "#222222", fontweight="bold")
            left += vals
        ax.set_yticks(y, labels)
        color_labels(ax, ctx)
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter())
        ax.set_xlabel("Share of all impressions of the run (%, warm-up included; mean over replicates)")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(3, len(ax.get_legend_handles_labels()[0])),
                  fontsize=11)
        split = any(k.startswith("views_pool_") for k in keys)
        note = "Pool stages split by the sampled impressions (tracked posts excluded)." if split else ""
        return finish(fig, ctx, name, headlines.sources(labels, shares), note)


def _segments(shares: dict[str, dict[str, float]], labels: list[str]) -> list[str]:
    """The bar segments in channel order: following, reshare, pool (by stage), explore, other."""
    keys = list(dict.fromkeys(k for lb in labels for k in shares[lb]))
    canon = [c for c, _, _ in SOURCES]
    keys.sort(key=lambda k: (canon.index("views_pool") + int(k.rsplit("_", 1)[1]) / 100)
              if k.startswith("views_pool_") else canon.index(k))
    return keys


def _segment_style(key: str, max_stage: int, ctx: Context) -> tuple[str, str]:
    """Legend label and colour of a segment: a channel's own, or a pool stage's shade of purple."""
    for col, label, color in SOURCES:
        if key == col:
            return label, color
    stage = int(key.rsplit("_", 1)[1])
    cmap = matplotlib.colormaps[POOL_CMAP]
    frac = 0.35 + 0.55 * (stage / max(max_stage, 1))
    return f"For You: {ctx.pool_label(stage, 'pool stage')}", matplotlib.colors.to_hex(cmap(frac))
