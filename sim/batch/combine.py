"""The combined tables of a results folder: every finished run's rows in plan order, the summary
table, and the sampled impressions as one partition per run.

Run folders are read in plan order, whatever order they finished in, so the combined tables are
byte-identical for any executor and job count.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.analysis import claims
from sim.analysis.summary import summary_table
from sim.batch.folder import write_parquet
from sim.batch.plan import RunnerError, plan
from sim.config import Experiment, Point, to_dict
from sim.recording import make_table

#: The tables every run writes and the folder combines (``impressions`` is partitioned instead).
TABLES = ("runs", "focal", "posts", "promotions", "timeseries", "measures")


def combine(out: Path, exp: Experiment, pts: list[Point]) -> None:
    """Concatenate every finished run's tables (in plan order) into the top-level tables of ``out``,
    write ``summary.parquet`` and add the impressions partition of each run that has none.

    Raises
    ------
    RunnerError
        A run's table is unreadable, or has other columns than the first run's (runs written by
        different feedsim versions); no combined table is replaced then.
    """
    run_dirs = [out / "runs" / k.run_id(pts) for k in plan(pts)]
    run_dirs = [d for d in run_dirs if d.exists()]
    for name in TABLES:  # every schema checked before any combined table is replaced
        schemas = [_read(pq.read_schema, d / f"{name}.parquet") for d in run_dirs]
        odd = next((d.name for d, sch in zip(run_dirs, schemas, strict=True) if sch != schemas[0]), None)
        if odd is not None:
            raise RunnerError(
                f"{out}: run {odd}'s {name} table has other columns than run {run_dirs[0].name}'s "
                f"(runs written by different feedsim versions); rerun with --force")
    for name in TABLES:
        tables = [_read(pq.read_table, d / f"{name}.parquet") for d in run_dirs]
        target = out / f"{name}.parquet"
        if not tables:  # no run finished: no table, rather than one left from other runs
            target.unlink(missing_ok=True)
            continue
        tmp = out / f".{name}.parquet.tmp"
        try:
            write_parquet(pa.concat_tables(tables), tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half-written table behind
            raise
        os.replace(tmp, target)
    runs = _runs_with_measures(out)
    write_summary(out, exp, runs)
    write_claims(out, exp, runs)
    _partition_impressions(out, run_dirs)


def _partition_impressions(out: Path, run_dirs: list[Path]) -> None:
    """``impressions/run_id=<run_id>/part-0.parquet`` for each run in ``run_dirs`` that has none yet."""
    imp_root = out / "impressions"
    imp_root.mkdir(exist_ok=True)
    for d in run_dirs:
        part = imp_root / f"run_id={d.name}"
        if not part.exists():
            tmp = imp_root / f".run_id={d.name}.tmp"
            tmp.mkdir(exist_ok=True)
            shutil.copyfile(d / "impressions.parquet", tmp / "part-0.parquet")
            os.replace(tmp, part)


def _runs_with_measures(out: Path) -> dict[str, list[Any]] | None:
    """``runs.parquet``'s columns with one column per measure joined (:func:`measure_columns`);
    None without a ``runs.parquet``."""
    path = out / "runs.parquet"
    if not path.exists():
        return None
    runs = pq.read_table(path).to_pydict()
    measures_path = out / "measures.parquet"
    if measures_path.exists():
        runs.update(measure_columns(runs["run_id"], pq.read_table(measures_path).to_pydict()))
    return runs


def write_summary(out: Path, exp: Experiment, runs: dict[str, list[Any]] | None = None) -> None:
    """``summary.parquet``: per ranker (and sweep point), mean and CI of every metric of the runs
    table and of the measures table, and paired differences, with the experiment's one bootstrap
    (:func:`sim.analysis.summary.summary_table`).  ``runs``: :func:`_runs_with_measures`, read here
    when not given.  Nothing is written without a ``runs.parquet``."""
    runs = _runs_with_measures(out) if runs is None else runs
    if runs is None:
        return
    tmp = out / ".summary.parquet.tmp"
    write_parquet(summary_table(runs, to_dict(exp), exp.seed), tmp)
    os.replace(tmp, out / "summary.parquet")


def write_claims(out: Path, exp: Experiment, runs: dict[str, list[Any]] | None = None) -> None:
    """``claims.parquet``: every ``[[claims]]`` table judged on the runs (measures joined) and the
    summary (:func:`sim.analysis.claims.evaluate`); no rows where the file declares none.  ``runs``:
    as for :func:`write_summary`.  Nothing is written without a ``runs.parquet``."""
    runs = _runs_with_measures(out) if runs is None else runs
    if runs is None:
        return
    summary_path = out / "summary.parquet"
    summary = pq.read_table(summary_path).to_pydict() if summary_path.exists() else None
    columns = claims.evaluate(to_dict(exp.claims), runs, summary)
    tmp = out / ".claims.parquet.tmp"
    write_parquet(make_table("claims", columns), tmp)
    os.replace(tmp, out / "claims.parquet")


def _read(reader: Callable[[Path], Any], path: Path) -> Any:
    """``reader(path)`` for a run's Parquet file, an unreadable one named as such."""
    try:
        return reader(path)
    except (pa.ArrowException, OSError) as exc:
        raise RunnerError(f"{path}: unreadable ({exc}); run the same command again to redo that run") from None


def measure_columns(run_ids: list[str], measures: dict[str, list[Any]]) -> dict[str, list[float | None]]:
    """The ``measures`` table as one column per ``<kind>.<entity>.<metric>``, aligned with ``run_ids``.

    Parameters
    ----------
    run_ids : list of str, length n_runs
        The runs table's ``run_id`` column: row ``i`` of every returned column is run ``run_ids[i]``.
    measures : dict of column name -> list
        The ``measures`` table as columns (``run_id``, ``kind``, ``entity``, ``metric``, ``value``).

    Returns
    -------
    dict of column name -> list of float or None, each of length n_runs
        ``None`` where a run did not record that measure.
    """
    row = {run_id: i for i, run_id in enumerate(run_ids)}
    columns: dict[str, list[float | None]] = {}
    for run_id, kind, entity, metric, value in zip(measures["run_id"], measures["kind"], measures["entity"],
                                                   measures["metric"], measures["value"], strict=True):
        column = columns.setdefault(f"{kind}.{entity}.{metric}", [None] * len(run_ids))
        column[row[run_id]] = value
    return columns
