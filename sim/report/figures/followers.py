"""Views against followers: how much an author's follower count decides a post's views."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.colors import LinearSegmentedColormap, to_rgb

from sim.analysis import tables
from sim.model.rng import streams
from sim.report import headlines
from sim.report.figures.style import Context, count_format, empty, finish, new_figure, styled


def views_vs_followers(posts: pa.Table, ctx: Context, max_points: int = 50_000,
                       name: str = "views_vs_followers") -> str:
    """Log-log density of post views against the author's followers, with the fitted slope per ranker
    (one panel per ranker, at most four, at most ``max_points`` posts each); returns the headline."""
    with styled():
        groups = tables.by_ranker(posts)
        labels = ctx.ordered(list(groups)) or ["(no posts)"]
        fig, axes = new_figure(1, min(len(labels), 4), sharex=True, sharey=True)
        fol_all, views_all = tables.column(posts, "author_followers_at_post"), tables.column(posts, "views")
        rng = streams(ctx.seed, 0)["bootstrap"]  # which posts are drawn when there are too many
        slopes: dict[str, tuple[float, float, float]] = {}
        xmax = max(float(np.max(fol_all)) if len(fol_all) else 1, 1) + 1
        ymax = max(float(np.max(views_all)) if len(views_all) else 1, 1) + 1
        lim = (0.8, max(xmax, ymax) * 1.5)
        for ax, lb in zip(axes[0], labels[:4], strict=False):
            if lb not in groups:
                empty(ax, "no posts")
                continue
            idx = np.concatenate(groups[lb])
            run_slopes = tables.run_slopes(posts, groups[lb])
            if len(idx) > max_points:
                idx = np.sort(rng.choice(idx, max_points, replace=False))
            x, y = fol_all[idx] + 1.0, views_all[idx] + 1.0
            _density(ax, x, y, lim, ctx.color(lb), lb)
            fit = tables.loglog_fit(x, y)
            if fit is not None:
                slopes[lb] = _fit_line(ax, x, fit, run_slopes, lb, ctx)
            _axes(ax, lim, lb, ctx)
        axes[0][0].set_ylabel("Views of the post (impressions +1, log)")
        return finish(fig, ctx, name, headlines.follower_slopes(slopes), "Log-log density of posts (darker = more "
                      "posts, hexagons with ≥1 post); slope of log10(1+views) on log10(1+followers), median over "
                      f"runs; ≤{max_points:,} posts shown per ranker.")


def _density(ax: Any, x: np.ndarray, y: np.ndarray, lim: tuple[float, float], color: str, label: str) -> None:
    """Hexagonal log-log density of posts (x followers + 1, y views + 1, both (n,)) in the ranker's hue."""
    rgb = np.array(to_rgb(color))
    cmap = LinearSegmentedColormap.from_list(label, np.vstack([0.78 + 0.22 * rgb, rgb, 0.45 * rgb]), N=256)
    ax.hexbin(x, y, xscale="log", yscale="log", bins="log", gridsize=40, mincnt=1, cmap=cmap,
              extent=(np.log10(lim[0]), np.log10(lim[1]), np.log10(lim[0]), np.log10(lim[1])), linewidths=0.2)


def _fit_line(ax: Any, x: np.ndarray, fit: tuple[float, float], run_slopes: list[float], label: str,
              ctx: Context) -> tuple[float, float, float]:
    """The pooled fit as a line, the per-run slopes in the panel title; returns (median, min, max) slope."""
    b, a = fit
    lx = np.log10(x)
    gx = np.linspace(lx.min(), lx.max(), 50)
    finite = [s for s in run_slopes if np.isfinite(s)]
    med = float(np.median(finite)) if finite else float(b)
    span = f" (runs {min(finite):.2f} to {max(finite):.2f})" if len(finite) > 1 else ""
    ax.plot(10 ** gx, 10 ** (a + b * gx), color="#111111", linewidth=2.2, label=f"fit: views ∝ followers^{b:.2f}")
    ax.set_title(f"{label}: slope {med:.2f}{span}", color=ctx.color(label))
    return med, min(finite, default=med), max(finite, default=med)


def _axes(ax: Any, lim: tuple[float, float], label: str, ctx: Context) -> None:
    """Reference diagonals (views = followers, = 100× followers), log axes, labels and legend."""
    diag = np.array(lim)
    ax.plot(diag, diag, color="#666666", linestyle="--", linewidth=1, label="views = followers")
    ax.plot(diag, diag * 100, color="#666666", linestyle=":", linewidth=1, label="views = 100× followers")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.xaxis.set_major_formatter(count_format)
    ax.yaxis.set_major_formatter(count_format)
    if not ax.get_title(loc="left"):
        ax.set_title(label, color=ctx.color(label))
    ax.set_xlabel("Author's followers when posting (+1, log)")
    ax.legend(loc="lower right", fontsize=10)
