"""The overview a finished batch prints on the terminal (``python -m sim run``): per ranker, the
median and range over runs of the focal metrics.  Presentation only: it reads ``runs.parquet`` and
writes nothing, so it stays out of the runner, which decides what is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sim.config import Experiment


def summary_lines(out: Path, exp: Experiment) -> list[str]:
    """A short table per ranker that ran: median and range of the focal metrics that apply (no
    focal post: no focal rows; a focal post without a product: no sell-out row)."""

    def _times(x: float) -> str:  # two significant figures below 10 (0.61x, 3.4x), whole above (122x)
        return f"{x:,.0f}x" if abs(x) >= 10 else f"{x:.2g}x"

    path = out / "runs.parquet"
    if not path.exists():
        return []
    runs = pq.read_table(path).to_pydict()
    focal = next((e for e in exp.events if e.name == exp.focal), None)
    rows: list[tuple[str, str, Callable[[float], str]]] = [
        ("focal_reach_ratio", "reach ratio", _times), ("focal_reach_share", "users reached", "{:.1%}".format),
        ("focal_non_follower_share", "non-follower share", "{:.1%}".format),
        ("focal_sellout_hours", "sell-out (h)", "{:,.1f}".format),
        ("low_follower_breakout_rate", "10-99-follower breakouts", "{:.2%}".format),
        ("median_daily_watch_min", "median daily watch (min)", "{:.1f}".format)]
    rows = [r for r in rows if r[0] in runs and (focal is not None or not r[0].startswith("focal_"))
            and (r[0] != "focal_sellout_hours" or (focal is not None and focal.product))]
    labels = [s.label or s.name for s in exp.rankers]
    width = max([14, *(len(label) + 2 for label in labels)])  # a long label keeps its column apart
    lines = [f"{'ranker':<{width}}{'metric':<28}{'median':>12}{'min':>12}{'max':>12}  runs"]
    for label in labels:
        idx = [i for i, r in enumerate(runs["ranker"]) if r == label]
        if not idx:  # not run (--only)
            continue
        for col, title, fmt in rows:
            values = [runs[col][i] for i in idx]
            present = np.array([v for v in values if v is not None], dtype=float)
            present = present[np.isfinite(present)]
            if len(present) == 0:
                cells = ["none"] * 3
            else:
                cells = [fmt(float(v)) for v in (np.median(present), present.min(), present.max())]
            lines.append(f"{label:<{width}}{title:<28}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}  "
                         f"{len(present)}/{len(values)}")
    return lines
