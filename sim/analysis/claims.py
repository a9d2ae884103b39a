"""Declared claims judged on a results folder's tables: one row per ``[[claims]]`` table.

A claim names a metric (a ``runs.parquet`` column, or a ``<kind>.<entity>.<metric>`` measure joined
as :func:`sim.batch.combine.measure_columns` joins it), a subject (one ranker, or the paired
difference or ratio of two, per replicate) at one sweep point or as its paired change between two
(``points = [a, b]``: the value at a less the value at b), a statistic over the subject's
replicates, a comparison and a threshold.  Everything here is a pure function of tables given as
column dicts; the verdicts are ``pass``, ``fail``, ``not measured`` (the metric is absent or has no
values) and ``too few replicates`` (an interval statistic below
:data:`~sim.analysis.bootstrap.MIN_REPLICATES` replicates).  Each row's interval is that of the
statistic judged (:func:`statistic_interval`, :func:`interval`): a median claim is not shown the
mean's interval.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sim.analysis.bootstrap import MIN_REPLICATES
from sim.analysis.metrics import bounds, mean_ci

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
VERDICTS = ("pass", "fail", "not measured", "too few replicates")
#: The columns :func:`evaluate` returns, in the order of ``SCHEMAS["claims"]``.
COLUMNS = ("claim", "metric", "subject", "point", "statistic", "compare", "threshold", "value", "ci_low",
           "ci_high", "n", "verdict", "sentence")

_POINT = re.compile(r"-p(\d+)-r\d+$")


def evaluate(claims: Sequence[Mapping[str, Any]], runs: Mapping[str, Sequence[Any]],
             summary: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
    """Judge every claim on the runs (measure columns joined) and the summary.

    Parameters
    ----------
    claims : sequence of mappings
        The experiment's ``[[claims]]`` tables as resolved (``to_dict`` of :class:`sim.config.Claim`).
    runs : dict of column name -> list, each of length n_runs
        ``runs.parquet`` with one column per measure (``<kind>.<entity>.<metric>``, None where a run
        has none).
    summary : dict of column name -> list, or None
        ``summary.parquet`` as columns; it gives a single ranker's interval and, where ``b`` is the
        baseline, a difference's bootstrap interval.  Without it every interval is a t-interval.

    Returns
    -------
    dict of column name -> list, one entry per claim
        The columns of :data:`COLUMNS` (``SCHEMAS["claims"]``).
    """
    out: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for index, claim in enumerate(claims):
        row = judge(claim, runs, summary)
        row["claim"] = index
        for name in COLUMNS:
            out[name].append(row[name])
    return out


def judge(claim: Mapping[str, Any], runs: Mapping[str, Sequence[Any]],
          summary: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:
    """One claim's row (every column of :data:`COLUMNS` but ``claim``)."""
    metric, statistic = str(claim["metric"]), str(claim.get("statistic") or "median")
    relative_to = str(claim.get("relative_to") or "")
    point = int(claim.get("point", -1))
    across = [int(p) for p in claim.get("points") or ()]
    kind, labels = subject_of(claim)
    joiner = {"difference": " - ", "ratio": " / "}.get(kind, "")
    subject = joiner.join(labels)
    if across:
        subject = f"({subject}) at point {across[0]} - at point {across[1]}" if joiner else \
            f"{subject} at point {across[0]} - at point {across[1]}"
    row: dict[str, Any] = {
        "metric": f"{metric} / {relative_to}" if relative_to else metric, "subject": subject,
        "point": point, "statistic": statistic,
        "compare": str(claim["compare"]), "threshold": float(claim["threshold"]), "value": None,
        "ci_low": None, "ci_high": None, "n": 0, "verdict": "not measured", "sentence": str(claim["sentence"]),
    }
    if metric not in runs or (relative_to and relative_to not in runs):
        return row
    if across:  # the subject's change from point b to point a, per replicate; no summary row for it
        at_a, at_b = (subject_values(runs, claim, kind, labels, at) for at in across)
        values = np.array([at_a[r] - at_b[r] for r in sorted(set(at_a) & set(at_b))], dtype=np.float64)
    else:
        values = np.array(list(subject_values(runs, claim, kind, labels, point).values()), dtype=np.float64)
    finite = values[np.isfinite(values)]
    summary_row = None if relative_to or across else summary_at(summary, runs, labels[0], metric, point)
    if statistic.startswith("point_rel"):
        value = _cell(summary_row, statistic)
        lo, hi = _cell(summary_row, "point_rel_ci_low"), _cell(summary_row, "point_rel_ci_high")
        row["n"] = int(summary_row.get("n") or 0) if summary_row else 0
        measured = summary_row is not None
    else:
        if statistic in ("mean", "ci_low", "ci_high"):  # the mean's interval; the others have their own
            lo, hi = interval("difference" if across else kind, labels, finite, metric, summary_row)
        else:
            lo, hi = statistic_interval(statistic, values, claim)
        value = {"ci_low": lo, "ci_high": hi}[statistic] if statistic in ("ci_low", "ci_high") else \
            statistic_of(statistic, values, claim)
        # A replicate without a value (no sell-out, say) counts as not meeting a share_of_replicates
        # claim: the claim is measured once any run of its subject exists.
        row["n"] = len(values) if statistic == "share_of_replicates" else len(finite)
        measured = len(values) > 0 if statistic == "share_of_replicates" else len(finite) > 0
    row.update(ci_low=_none(lo), ci_high=_none(hi))
    if not measured:
        return row
    if statistic.endswith(("ci_low", "ci_high")) and row["n"] < MIN_REPLICATES:
        row["verdict"] = "too few replicates"
        return row
    if not np.isfinite(value):
        return row
    row["value"] = float(value)
    row["verdict"] = "pass" if COMPARE[row["compare"]](float(value), row["threshold"]) else "fail"
    return row


def subject_values(runs: Mapping[str, Sequence[Any]], claim: Mapping[str, Any], kind: str, labels: list[str],
                   point: int) -> dict[int, float]:
    """``{replicate: value}`` of the claim's subject at sweep ``point``: a ranker's value, or the paired
    difference or ratio of two, each run's value divided by its ``relative_to`` metric where set."""
    metric, relative_to = str(claim["metric"]), str(claim.get("relative_to") or "")
    per_label = [replicate_values(runs, metric, label, point) for label in labels]
    if relative_to:  # each run's quotient; the summary has no row for it (a t-interval is used)
        per_label = [quotient(values, replicate_values(runs, relative_to, label, point))
                     for values, label in zip(per_label, labels, strict=True)]
    return paired(per_label, kind)


def subject_of(claim: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The claim's subject: ("ranker", [label]), ("difference", [a, b]) or ("ratio", [a, b])."""
    for kind in ("difference", "ratio"):
        if claim.get(kind):
            return kind, [str(label) for label in claim[kind]]
    return "ranker", [str(claim.get("ranker") or "")]


def point_of(run_id: str) -> int:
    """The sweep point index in a run id (``<label>-p<point>-r<replicate>``), -1 without one.

    >>> point_of("content-p1-r3"), point_of("content-r0")
    (1, -1)
    """
    match = _POINT.search(run_id)
    return int(match.group(1)) if match else -1


def replicate_values(runs: Mapping[str, Sequence[Any]], metric: str, label: str, point: int) -> dict[int, float]:
    """``{replicate: value}`` of ``metric`` for ranker ``label`` at sweep ``point`` (-1: every run),
    nan where a run has no value."""
    out = {}
    for run_id, ranker, rep, value in zip(runs["run_id"], runs["ranker"], runs["replicate"], runs[metric],
                                          strict=True):
        if ranker == label and (point < 0 or point_of(str(run_id)) == point):
            out[int(rep)] = np.nan if value is None else float(value)
    return out


def quotient(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
    """``{replicate: a / b}`` over the replicates of ``a``: nan where ``b`` has none or is zero.

    >>> quotient({0: 2.0, 1: 3.0, 2: 1.0}, {0: 4.0, 1: 0.0})
    {0: 0.5, 1: nan, 2: nan}
    """
    return {rep: (x / b[rep]) if b.get(rep) else float("nan") for rep, x in a.items()}


def paired(per_label: list[dict[int, float]], kind: str) -> dict[int, float]:
    """``{replicate: value}``: the ranker's own, or ``a - b`` / ``a / b`` over the replicates both
    have (a ratio over a zero is nan).

    >>> paired([{0: 6.0, 1: 1.0, 2: 4.0}, {0: 3.0, 1: 0.0}], "ratio")
    {0: 2.0, 1: nan}
    """
    if kind == "ranker":
        return dict(per_label[0])
    a, b = per_label
    reps = sorted(set(a) & set(b))
    if kind == "difference":
        return {r: a[r] - b[r] for r in reps}
    return {r: a[r] / b[r] if b[r] != 0 else float("nan") for r in reps}


def statistic_of(statistic: str, values: np.ndarray, claim: Mapping[str, Any]) -> float:
    """The statistic over one value per replicate (nan: none to take it over); ``share_of_replicates``
    counts a replicate without a value as not meeting its bounds."""
    finite = values[np.isfinite(values)]
    if statistic == "share_of_replicates":
        return float(meeting(values, claim).mean()) if len(values) else float("nan")
    if not len(finite):
        return float("nan")
    take: dict[str, Callable[[np.ndarray], Any]] = {"median": np.median, "mean": np.mean, "min": np.min,
                                                    "max": np.max}
    return float(take[statistic](finite))


def meeting(values: np.ndarray, claim: Mapping[str, Any]) -> np.ndarray:
    """Which replicates meet a ``share_of_replicates`` claim's ``at_least`` / ``at_most`` bounds (one
    without a value does not).

    >>> meeting(np.array([1.0, 5.0, np.nan]), {"at_least": 2.0}).tolist()
    [False, True, False]
    """
    meets = np.isfinite(values)
    if claim.get("at_least") is not None:
        meets &= values >= float(claim["at_least"])
    if claim.get("at_most") is not None:
        meets &= values <= float(claim["at_most"])
    return meets


def statistic_interval(statistic: str, values: np.ndarray, claim: Mapping[str, Any],
                       level: float = 0.95) -> tuple[float, float]:
    """The interval of a statistic other than the mean, nan where there is none to give.

    * ``median``: the distribution-free interval between two order statistics
      (:func:`scipy.stats.quantile_test`), which covers the median at least ``level`` of the time
      whatever the distribution; it needs 6 values at 95%.
    * ``share_of_replicates``: the exact (Clopper-Pearson) binomial interval of the share of
      replicates meeting the claim's bounds, inside [0, 1].
    * ``min``, ``max``: none (a sample's extreme bounds the population's only one way).

    Below :data:`~sim.analysis.bootstrap.MIN_REPLICATES` values every bound is nan.

    >>> statistic_interval("median", np.arange(8.0), {})
    (0.0, 7.0)
    >>> [round(x, 3) for x in statistic_interval("share_of_replicates", np.array([1.0] * 8), {"at_least": 1})]
    [0.631, 1.0]
    """
    from scipy import stats

    nan = (float("nan"), float("nan"))
    finite = values[np.isfinite(values)]
    if statistic == "median" and len(finite) >= MIN_REPLICATES:
        ci = stats.quantile_test(finite, q=float(np.median(finite)), p=0.5).confidence_interval(level)
        return float(ci.low), float(ci.high)
    if statistic == "share_of_replicates" and len(values) >= MIN_REPLICATES:
        ci = stats.binomtest(int(meeting(values, claim).sum()), len(values)).proportion_ci(level, method="exact")
        return float(ci.low), float(ci.high)
    return nan


def interval(kind: str, labels: list[str], finite: np.ndarray, metric: str,
             summary_row: Mapping[str, Any] | None) -> tuple[float, float]:
    """The 95% interval of the subject's mean, the one ``mean``, ``ci_low`` and ``ci_high`` claims show:
    the summary's (a ranker's t-interval; a difference's bootstrap interval where ``b`` is the
    baseline), else a t-interval of the paired values."""
    if summary_row:
        if kind == "ranker":
            return _cell(summary_row, "ci_low"), _cell(summary_row, "ci_high")
        if kind == "difference" and summary_row.get("baseline") == labels[1]:
            return _cell(summary_row, "diff_ci_low"), _cell(summary_row, "diff_ci_high")
    limits = bounds(metric) if kind == "ranker" else (-np.inf, np.inf)
    _, lo, hi = mean_ci(finite, limits=limits)
    return lo, hi


def summary_at(summary: Mapping[str, Sequence[Any]] | None, runs: Mapping[str, Sequence[Any]], label: str,
               metric: str, point: int) -> dict[str, Any] | None:
    """The summary row of (``label``, ``metric``) at sweep ``point``: the point's ``sweep_*`` values are
    read from one of its runs."""
    if not summary or not summary.get("ranker"):
        return None
    sweep = [c for c in summary if c.startswith("sweep_") and c in runs]
    where: dict[str, Any] = {}
    if point >= 0 and sweep:
        i = next((i for i, run_id in enumerate(runs["run_id"]) if point_of(str(run_id)) == point), None)
        if i is None:
            return None
        where = {c: runs[c][i] for c in sweep}
    for i, (ranker, name) in enumerate(zip(summary["ranker"], summary["metric"], strict=True)):
        if ranker == label and name == metric and all(summary[c][i] == v for c, v in where.items()):
            return {c: summary[c][i] for c in summary}
    return None


def failed(verdicts: Sequence[str]) -> int:
    """How many verdicts are not ``pass``."""
    return sum(v != "pass" for v in verdicts)


def _cell(row: Mapping[str, Any] | None, name: str) -> float:
    value = None if row is None else row.get(name)
    return float("nan") if value is None else float(value)


def _none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
