"""The Python API, for notebooks and scripts: :func:`run`, :func:`load` and :class:`Results`.

::

    import sim

    results = sim.run("experiments/trinidad.toml", quick=True)
    results.table("runs")            # a pyarrow.Table
    results.to_pandas("summary")     # a pandas.DataFrame (the 'analysis' extra)
    results.manifest["config"]       # the configuration as resolved

:func:`run` writes the same results folder as ``python -m sim run`` (the same
:class:`~sim.batch.runner.Runner`, so the same bytes for the same configuration), and
resumes a folder that is already there.  :func:`load` opens a finished folder.

Failed runs: :func:`run` raises :class:`RunsFailed`, which names every failed
run, keeps each one's traceback in ``failures`` and the results of the runs that
finished in ``results`` (a comparison with a ranker missing is easy to misread,
so it is never returned silently).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sim.batch.folder import FolderError, read_manifest
from sim.batch.runner import TABLES, Runner, RunOutcome, plan
from sim.config import Experiment, check_memory, points, resolve, to_dict
from sim.config import load as read_experiment

if TYPE_CHECKING:
    import pandas
    import pyarrow.dataset

#: Every table a results folder holds: the combined per-run tables, the summary, and the
#: sampled impressions (a folder of Parquet files, one per run).
TABLE_NAMES = (*TABLES, "summary", "claims", "impressions")


class ResultsError(ValueError):
    """A folder that is not a results folder, or a table it lacks."""


class RunsFailed(RuntimeError):
    """Some runs of :func:`run` failed.

    Attributes
    ----------
    failures : dict[str, str]
        Run id -> what went wrong (the traceback of an exception raised in the run).
    results : Results
        The results folder with the runs that finished (the failed ones are absent from its tables).
    """

    def __init__(self, failures: dict[str, str], results: Results):
        self.failures = failures
        self.results = results
        first = next(iter(failures.values())).strip().splitlines()
        super().__init__(f"{len(failures)} run(s) failed in {results.path}: {', '.join(failures)} "
                         f"(first: {first[-1] if first else 'no message'}); see .failures for the tracebacks, "
                         f".results for the runs that finished")


class Results:
    """A results folder written by :func:`run` or ``python -m sim run``.

    Attributes
    ----------
    path : Path
        The folder.
    manifest : dict
        ``manifest.json``: the configuration as resolved, seeds, versions, timings, finished runs.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not self.path.is_dir():
            raise ResultsError(f"{self.path}: no such folder (expected a results folder, e.g. results/<name>)")
        if not manifest_path.exists():
            raise ResultsError(f"{self.path}: not a results folder (no manifest.json; expected a folder written "
                               f"by sim.run() or `python -m sim run`)")
        try:
            manifest = read_manifest(self.path)
        except FolderError as exc:
            raise ResultsError(str(exc)) from None
        assert manifest is not None
        self.manifest: dict[str, Any] = manifest
        if not isinstance(self.manifest.get("config"), dict):
            raise ResultsError(f"{manifest_path}: no 'config' object (not written by feedsim?)")

    @property
    def name(self) -> str:
        """The experiment's name."""
        return str(self.manifest.get("experiment", self.path.name))

    @property
    def rankers(self) -> list[str]:
        """Ranker labels, in the experiment's order."""
        return [r.get("label") or r["name"] for r in self.manifest["config"].get("rankers", [])]

    @property
    def run_ids(self) -> list[str]:
        """Finished runs, sorted."""
        return sorted(self.manifest.get("runs", {}))

    @property
    def tables(self) -> list[str]:
        """The tables this folder holds (a subset of :data:`TABLE_NAMES`)."""
        return [name for name in TABLE_NAMES if self._file(name).exists()]

    def _file(self, name: str) -> Path:
        if name not in TABLE_NAMES:
            raise ResultsError(f"unknown table {name!r} (known: {', '.join(TABLE_NAMES)})")
        return self.path / ("impressions" if name == "impressions" else f"{name}.parquet")

    def dataset(self, name: str) -> pyarrow.dataset.Dataset:
        """Table ``name`` as a lazily read :class:`pyarrow.dataset.Dataset` (filter before reading:
        ``impressions`` can be large)."""
        import pyarrow.dataset as ds

        path = self._file(name)
        if not path.exists():
            raise ResultsError(f"{path}: missing (the {name!r} table; no run finished, or the folder was "
                               f"written by an older feedsim)")
        return ds.dataset(path, format="parquet")

    def table(self, name: str) -> pa.Table:
        """Table ``name`` (one of :data:`TABLE_NAMES`) as a :class:`pyarrow.Table`.

        Columns, units and meanings: ``python -m sim schema --results``.
        """
        if name == "impressions":
            return self.dataset(name).to_table()
        import pyarrow.parquet as pq

        path = self._file(name)
        if not path.exists():
            raise ResultsError(f"{path}: missing (the {name!r} table; no run finished, or the folder was "
                               f"written by an older feedsim)")
        return pq.read_table(path)

    def to_pandas(self, name: str) -> pandas.DataFrame:
        """Table ``name`` as a :class:`pandas.DataFrame` (needs pandas: the ``analysis`` extra)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ImportError("Results.to_pandas needs pandas: pip install 'feedsim[analysis]' (or use "
                              "Results.table(name), a pyarrow.Table)") from None
        return self.table(name).to_pandas()

    def __repr__(self) -> str:
        config = self.manifest["config"]
        users = config.get("world", {}).get("users")
        where = f"{users:,} users, " if isinstance(users, int) else ""
        days, replicates = config.get("horizon_days"), config.get("replicates")
        span = f"{days:g} days, " if isinstance(days, int | float) else ""
        reps = f"{replicates} replicate{'' if replicates == 1 else 's'}" if isinstance(replicates, int) else ""
        return (f"<Results {self.name!r}: {len(self.run_ids)} runs of {', '.join(self.rankers)} "
                f"({where}{span}{reps}) at {self.path}>")


def load(path: str | Path) -> Results:
    """Open a results folder: ``path`` itself, else ``results/<path>`` (as ``python -m sim report`` does)."""
    folder = Path(path)
    if not folder.exists() and (Path("results") / folder).is_dir():
        folder = Path("results") / folder
    return Results(folder)


def to_experiment(spec: str | Path | Mapping[str, Any] | Experiment, *, quick: bool = False,
               overrides: Mapping[str, Any] | None = None) -> Experiment:
    """The validated :class:`Experiment` of a file path, a TOML-shaped dict or an Experiment, with
    ``quick`` (the file's ``[quick]`` variant) and then ``overrides`` (``{"world.users": 5000}``,
    the keys ``--set`` takes) applied.  Raises :class:`~sim.config.ConfigError` naming every problem,
    or when one run would not fit in this machine's memory (as for a file)."""
    if isinstance(spec, str | Path):
        return read_experiment(spec, overrides, quick=quick)
    if isinstance(spec, Experiment):
        # parse() keeps the table it was made from; a hand-built Experiment (its rankers' params
        # still plain dicts) is written out and validated.
        table = getattr(spec, "_table", None)
        if table is not None and not quick and not overrides:
            check_memory(spec)
            return spec
        table = dict(table) if table is not None else to_dict(spec)
        source = getattr(spec, "_source", spec.name or "<Experiment>")
    elif isinstance(spec, Mapping):
        table, source = dict(spec), "<dict>"
        if not table.get("name"):
            table["name"] = "experiment"
    else:
        raise TypeError(f"sim.run: expected a path, a dict or an Experiment (got {type(spec).__name__})")
    return resolve(table, source, overrides, quick)


def run(experiment: str | Path | Mapping[str, Any] | Experiment, *, out: str | Path | None = None,
        quick: bool = False, jobs: int | None = None, overrides: Mapping[str, Any] | None = None,
        force: bool = False, report: bool = True) -> Results:
    """Run an experiment (every sweep point x ranker x replicate) and return its :class:`Results`.

    Parameters
    ----------
    experiment
        An experiment file's path, its content as a dict (the parsed TOML; without a ``name`` it is
        named ``experiment``), or an :class:`Experiment`.
    out
        Results folder (default ``results/<name>``, ``results/<name>-quick`` with ``quick``, relative
        to the working directory, as for ``python -m sim run``).  Finished runs in it are kept.
    quick
        The experiment's ``[quick]`` variant (default: at most 50,000 users, 2 replicates, 1 day).
    jobs
        Processes at once (default: all cores); every run has a process of its own, so a ranker
        that ends its process fails its run alone.
    overrides
        ``{"dotted.key": value}``, as ``--set`` (``"rankers.<label>.<param>"`` for a ranker's params).
    force
        Replace a folder that holds results of a different configuration (else that is an error).
    report
        Also draw ``plots/`` and ``report.md``, as the command line does (skipped with a warning
        when matplotlib, the ``plots`` extra, is missing).

    Raises
    ------
    ConfigError
        The experiment is invalid (every problem, each named by key).
    RunnerError
        ``out`` holds results of another configuration (and not ``force``).
    RunsFailed
        Some runs failed; the others are written and in its ``results``.
    """
    exp = to_experiment(experiment, quick=quick, overrides=overrides)
    folder = Path(out) if out is not None else Path("results") / (exp.name + ("-quick" if quick else ""))
    runner = Runner(exp, folder, jobs=jobs or os.cpu_count() or 1, force=force, overrides=dict(overrides or {}),
                    command=_command(experiment, folder, quick, overrides), quick=quick)

    def after(outcomes: list[RunOutcome]) -> None:  # under the folder's lock, as for the command line
        if report and (any(o.error is None for o in outcomes) or not outcomes):
            _report(folder)

    outcomes = runner.run(plan(points(exp)), after=after)
    failures = {o.run_id: o.error for o in outcomes if o.error is not None}
    results = Results(folder)
    if failures:
        raise RunsFailed(failures, results)
    return results


def _command(experiment: Any, folder: Path, quick: bool, overrides: Mapping[str, Any] | None) -> str:
    """The call that made a folder, for its manifest (a dict or an Experiment is not spelled out)."""
    what = repr(str(experiment)) if isinstance(experiment, str | Path) else f"<{type(experiment).__name__}>"
    args = [what, f"out={str(folder)!r}"] + (["quick=True"] if quick else [])
    if overrides:
        args.append(f"overrides={dict(overrides)!r}")
    return f"sim.run({', '.join(args)})"


def _report(folder: Path) -> None:
    try:
        from sim.report import ReportError, build
    except ImportError as exc:
        warnings.warn(f"report skipped: {exc} (pip install 'feedsim[plots]')", stacklevel=3)
        return
    try:
        build(folder)
    except ReportError as exc:
        warnings.warn(f"report failed: {exc}", stacklevel=3)
