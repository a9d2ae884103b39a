"""``sim bench --scaling``: engine throughput and peak memory against world size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.report import headlines
from sim.report.figures.style import new_figure

#: Throughput columns of a scaling row and their legend labels.
THROUGHPUTS = (("impressions_per_s", "engine, content ranker"),
               ("follower_impressions_per_s", "engine, follower ranker"),
               ("floor_impressions_per_s", "floor kernel"))


def bench_scaling(rows: list[dict], stem: Path) -> str:
    """Impressions/s and peak memory against users, one row per world size; writes ``stem``.png and
    .svg and returns the headline."""
    users = np.array([r["users"] for r in rows], dtype=float)
    fig, axes = new_figure(1, 2)
    left, right = axes[0]
    for key, label in THROUGHPUTS:
        left.plot(users, [r[key] for r in rows], marker="o", label=label)
    left.set_xscale("log")
    left.set_xlabel("Users")
    left.set_ylabel("Impressions per second (one process)")
    left.legend(frameon=False)
    right.plot(users, [r["peak_rss_mb"] for r in rows], marker="o", color="#555555")
    right.set_xscale("log")
    right.set_xlabel("Users")
    right.set_ylabel("Peak memory (MB)")
    title = headlines.bench_scaling(rows)
    fig.suptitle(title, fontsize=15, fontweight="bold", x=0.01, ha="left")
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=200)
    fig.savefig(stem.with_suffix(".svg"))
    return title
