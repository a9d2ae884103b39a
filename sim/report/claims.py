"""The report's first section: every declared claim with its measured value, interval and verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.report.formatting import fmt_num, md_table

VERDICT_MARK = {"pass": "✅ pass", "fail": "❌ fail", "not measured": "⚠️ not measured",
                "too few replicates": "⚠️ too few replicates"}


def claims_section(claims: Mapping[str, Sequence[Any]] | None) -> list[str]:
    """``## Claims``: one line per claim (``claims.parquet`` as columns); nothing where the experiment
    declares none."""
    if not claims or not claims.get("claim"):
        return []
    rows = []
    for i in range(len(claims["claim"])):
        cell = {k: v[i] for k, v in claims.items()}
        where = f" at point {cell['point']}" if cell.get("point", -1) >= 0 else ""
        rows.append([cell["sentence"], f"{cell['statistic']} of `{cell['metric']}`, {cell['subject']}{where}",
                     f"{_num(cell['value'])} {cell['compare']} {_num(cell['threshold'])}",
                     _interval(cell["ci_low"], cell["ci_high"]), str(cell["n"]),
                     VERDICT_MARK.get(cell["verdict"], cell["verdict"])])
    passed = sum(v == "pass" for v in claims["verdict"])
    return (["## Claims", "", f"{passed} of {len(rows)} declared claims pass. 95% interval of the statistic "
             "judged: a median's from order statistics (distribution-free, none below 6 replicates), a share "
             "of replicates' exact binomial, a mean's (and its bounds') t or paired bootstrap, a relative "
             "change's (point_rel_*) paired bootstrap; none for a min or max, none below 5 replicates.", ""]
            + md_table(["claim", "measured as", "value vs threshold", "95% interval", "n", "verdict"], rows)
            + [""])


def _num(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else fmt_num(float(x), 3)


def _interval(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None or hi is None else f"[{_num(lo)}, {_num(hi)}]"
