"""Run an experiment into a results folder: prepare or resume the folder, run what is not finished,
combine the tables and keep the manifest.

Layout of ``results/<experiment>/``::

    manifest.json         config as resolved, seeds, versions, timings, finished runs
    runs/<run_id>/*.parquet   one folder per finished run (written to a temporary
                          folder, then renamed: a folder that exists is complete)
    runs.parquet, focal.parquet, posts.parquet, promotions.parquet, timeseries.parquet
                          every run's rows, combined in run order
    summary.parquet       per ranker: mean and 95% CI of every metric, paired differences
                          versus the baseline ranker with a seeded bootstrap CI
    impressions/run_id=<run_id>/part-0.parquet   sampled impressions, partitioned
    plots/, report.md     figures and report (sim.report)

Re-running the same command skips finished runs.  A results folder made from a
different configuration is refused (unless ``force``), so results from two
configurations never mix.

The batch is split by what each part decides: :mod:`sim.batch.plan` (which runs),
:mod:`sim.batch.execute` (one run), :mod:`sim.batch.executors` (where runs go),
:mod:`sim.batch.combine` (the combined tables and the summary), :mod:`sim.batch.folder` (what may
be written where, and the lock).  Each run writes its own folder; the driver alone writes the
manifest and the combined tables.
"""

from __future__ import annotations

import contextlib
import errno
import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from sim.batch.combine import TABLES, combine, measure_columns
from sim.batch.execute import Job, RunOutcome
from sim.batch.executors import EXECUTORS, Executor, Terminated, processes, ray_cluster, serial, sigterm_interrupts
from sim.batch.folder import (
    FORMAT,
    FolderError,
    atomic_write_bytes,
    check_place,
    clear,
    clear_stale_temporaries,
    locked,
    read_manifest,
    verify_run,
)
from sim.batch.plan import NOT_HASHED, RunKey, RunnerError, config_hash, plan
from sim.config import (
    Experiment,
    estimate_peak_bytes,
    format_bytes,
    machine_memory_bytes,
    points,
    to_dict,
)

#: The batch's API, importable from here; TABLES and measure_columns live in sim.batch.combine.
__all__ = ["EXECUTORS", "TABLES", "Interrupted", "RunOutcome", "Runner", "RunnerError", "config_hash",
           "measure_columns", "plan"]


class Interrupted(RunnerError):
    """Ctrl-C (or SIGTERM: ``terminated``) stopped the batch; finished runs are kept and the same
    command resumes it."""

    def __init__(self, message: str, terminated: bool = False):
        super().__init__(message)
        self.terminated = terminated


class Runner:
    """Runs an experiment's runs into ``out``: ``executor`` ``"process"`` with ``jobs`` local
    processes, or ``"ray"`` on the cluster at ``ray_address``.

    Progress: a bar on a terminal; otherwise, or when ``progress`` is given, one line per run.
    """

    def __init__(self, exp: Experiment, out: Path, jobs: int = 1, force: bool = False,
                 overrides: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None,
                 executor: str = "process", ray_address: str | None = None, command: str = "",
                 quick: bool = False):
        self.exp = exp
        self.points = points(exp)
        self.out = Path(out)
        self.jobs = max(1, jobs)
        self.force = force
        self.overrides = overrides or {}
        self.show_bar = progress is None and sys.stderr.isatty()
        self.progress = progress or (lambda line: tqdm.write(line, file=sys.stderr))
        if executor not in EXECUTORS:
            raise RunnerError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
        self.executor = executor
        self.ray_address = ray_address
        self.command = command
        self.quick = quick
        self.digest = config_hash(exp)

    def _executor(self) -> Executor:
        """Where this batch's runs go, from ``executor`` (and ``jobs``, for local processes)."""
        if self.executor == "ray":
            return ray_cluster(self.ray_address)
        if self.executor == "serial":
            return serial
        return processes(self._jobs_that_fit())

    def _jobs_that_fit(self) -> int:
        """``jobs``, lowered (and said) where that many runs at once would not fit in memory."""
        memory = machine_memory_bytes()
        if memory is None:
            return self.jobs
        per_run = max(estimate_peak_bytes(p.exp) for p in self.points)
        fit = max(1, int(memory // per_run))
        if fit < self.jobs:
            self.progress(f"running {fit} run(s) at a time, not {self.jobs}: each needs about "
                          f"{format_bytes(per_run)} of this machine's {format_bytes(memory)}")
        return min(self.jobs, fit)

    def _prepare(self) -> dict[str, Any]:
        """Under the lock: replace (``force``) or resume the folder; the manifest to go on with."""
        old = read_manifest(self.out)
        # A folder started at another revision, or with other uncommitted changes to the checkout,
        # resumes (with a warning) unless --force replaces it.
        revision, started = git_revision() or "", str((old or {}).get("git_revision") or "")
        other_revision = bool(started and revision and started != revision)
        found = git_changes()  # None outside a checkout: recorded as such in a new manifest
        changes, started_changes = found or [], list((old or {}).get("git_changes") or [])
        other_changes = old is not None and not other_revision and changes != started_changes
        other_config = old is not None and old.get("config_hash") != self.digest
        if old is not None and other_config and not self.force:
            raise RunnerError(
                f"{self.out}: holds results of a different configuration "
                f"(hash {old.get('config_hash')} vs {self.digest}); use --force to replace them, "
                f"or --out to write elsewhere")
        if old is not None and self.force and (other_config or other_revision or other_changes):
            kept = clear(self.out)
            if other_config:
                why = "another configuration"
            elif other_revision:
                why = f"revision {started[:10]}; this is {revision[:10]}"
            else:
                why = "other uncommitted changes to the checkout"
            self.progress(f"--force: removed the results feedsim wrote in {self.out} ({why})"
                          + (f"; kept what it did not write: {', '.join(kept)}" if kept else ""))
            old = None
        stale = clear_stale_temporaries(self.out)
        if stale:
            self.progress(f"removed {len(stale)} temporary file(s) an interrupted batch left: {', '.join(stale[:4])}"
                          + (", ..." if len(stale) > 4 else ""))
        (self.out / "runs").mkdir(exist_ok=True)
        if old is not None:
            if other_changes:
                from sim.report.formatting import fmt_paths  # sim.report loads matplotlib: only here

                self.progress(f"warning: {self.out} was started with uncommitted changes to "
                              f"{fmt_paths(started_changes, shown=3)}, this checkout has them to "
                              f"{fmt_paths(changes, shown=3)}: "
                              "finished runs are kept and the manifest lists both (to rerun them all: --force)")
                old["git_changes"] = sorted(set(started_changes) | set(changes))
            if other_revision:
                self.progress(f"warning: {self.out} was started at revision {started[:10]}, this "
                              f"is {revision[:10]}: finished runs are kept, and a model change in between "
                              f"would mix into the results (to rerun them all: --force, or another --out)")
            current = to_dict(self.exp)
            old["config"].update({k: current[k] for k in NOT_HASHED})
            old.update({"format": FORMAT, "command": self.command, "quick": self.quick})
            return old
        return {"format": FORMAT, "experiment": self.exp.name, "config_hash": self.digest,
                "config": to_dict(self.exp), "overrides": self.overrides, "seed": self.exp.seed,
                "command": self.command, "quick": self.quick,
                "sweep_points": [p.params for p in self.points], "versions": _versions(),
                "git_revision": revision or None, "git_changes": found, "runs": {}}

    def _finished_runs(self, keys: list[RunKey], manifest: dict[str, Any]) -> list[RunKey]:
        """The runs of ``keys`` already finished here for this configuration and intact; a run
        folder that fails :func:`verify_run` is removed (and said) so that it is redone."""
        runs = self.out / "runs"
        kept = []
        planned = {key.run_id(self.points) for key in keys}
        for run_id in [r for r in manifest["runs"] if r not in planned]:  # e.g. after fewer replicates
            manifest["runs"].pop(run_id)
        impressions = self.out / "impressions"
        if impressions.is_dir():
            for partition in impressions.glob("run_id=*"):
                if partition.name.removeprefix("run_id=") not in planned:
                    shutil.rmtree(partition)  # combine() copies it back if the run is planned again
        for key in keys:
            run_id = key.run_id(self.points)
            run_dir = runs / run_id
            partition = impressions / f"run_id={run_id}"
            if run_dir.exists() and not (run_dir / "run.json").is_file():
                raise RunnerError(f"{run_dir}: not a run folder feedsim wrote (no run.json); move it away and "
                                  f"run the same command again")
            reason = verify_run(run_dir, self.digest) if run_dir.exists() else None
            if reason is not None:
                self.progress(f"redoing run {run_id}: {reason}")
                shutil.rmtree(run_dir)
            if not run_dir.exists():  # no partition may outlive its run: combine() copies the new one
                manifest["runs"].pop(run_id, None)
                if partition.exists():
                    shutil.rmtree(partition)
                continue
            kept.append(key)
            if run_id not in manifest["runs"]:  # finished while its batch was being stopped
                written = json.loads((run_dir / "run.json").read_text())
                manifest["runs"][run_id] = {"impressions": written["impressions"],
                                            "wall_s": round(written["wall_s"], 3)}
        return kept

    def run(self, keys: Iterable[RunKey],
            after: Callable[[list[RunOutcome]], None] | None = None) -> list[RunOutcome]:
        """Run ``keys`` (skipping those finished), combine the tables, then call ``after`` with the
        outcomes (e.g. to draw the report), all under the folder's lock.

        Raises
        ------
        RunnerError
            The folder may not be written (:func:`sim.batch.folder.check_place`), is in use by
            another batch, holds another configuration (without ``force``), or cannot be written.
        Interrupted
            Ctrl-C or SIGTERM stopped the batch; finished runs are kept.
        """
        try:
            check_place(self.out)
            self.out.mkdir(parents=True, exist_ok=True)
            with sigterm_interrupts(), locked(self.out, self.command):
                outcomes = self._run_locked(list(keys))
                if after is not None:
                    after(outcomes)
                return outcomes
        except FolderError as exc:
            raise RunnerError(str(exc)) from None
        except OSError as exc:
            raise RunnerError(_os_error(exc, self.out)) from None
        except KeyboardInterrupt as exc:  # outside the runs: while preparing, combining or reporting
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            raise Interrupted(f"{how} while writing {self.out}'s tables or report; finished runs are kept: run "
                              f"the same command again to finish", terminated=isinstance(exc, Terminated)) from None

    def _run_locked(self, keys: list[RunKey]) -> list[RunOutcome]:
        """:meth:`run` once the folder is locked: resume, run what is left, combine, close the manifest."""
        manifest = self._prepare()
        # Every run of the plan is checked, not only those asked for: combine() reads them all.
        finished_keys = set(self._finished_runs(plan(self.points), manifest))
        self._write_manifest(manifest)  # marks the folder as feedsim's from the start
        todo = [k for k in keys if k not in finished_keys]
        skipped = len(keys) - len(todo)
        if skipped:
            self.progress(f"resuming: {skipped} of {len(keys)} runs already finished")
        started = time.time()
        outcomes: list[RunOutcome] = []
        progress = _Progress(len(todo), started, self.show_bar, self.progress)
        try:
            with progress.bar, contextlib.closing(self._executor()([self._job(k) for k in todo])) as stream:
                for outcome in stream:
                    outcomes.append(outcome)
                    if outcome.error is None:
                        manifest["runs"][outcome.run_id] = {"impressions": outcome.impressions,
                                                            "wall_s": round(outcome.wall_s, 3)}
                        self._write_manifest(manifest)
                    progress.finished(outcome)
        except KeyboardInterrupt as exc:
            for key in todo:
                shutil.rmtree(self.out / "runs" / f"{key.run_id(self.points)}.tmp", ignore_errors=True)
            n_finished = skipped + sum(o.error is None for o in outcomes)
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            raise Interrupted(f"{how}: {n_finished} of {len(keys)} runs finished in "
                              f"{self.out}; run the same command again to resume (finished runs are "
                              f"skipped)", terminated=isinstance(exc, Terminated)) from None
        wall = time.time() - started
        combine(self.out, self.exp, self.points)
        self._write_manifest(self._final_manifest(manifest, started, wall))
        return outcomes

    def _final_manifest(self, manifest: dict[str, Any], started: float, wall: float) -> dict[str, Any]:
        """``manifest`` with the finished batch's executor, timings and overall impressions per second."""
        total_imp = sum(v["impressions"] for v in manifest["runs"].values())
        total_wall = sum(v["wall_s"] for v in manifest["runs"].values())
        manifest.update({
            "jobs": self.jobs, "executor": self.executor, "wall_s": round(wall, 3),
            "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "impressions_per_s": round(total_imp / total_wall, 1) if total_wall else None,
            "finished": sorted(manifest["runs"]),
        })  # fmt: skip
        return manifest

    def _job(self, key: RunKey) -> Job:
        """The executor's arguments for run ``key`` (:data:`sim.batch.execute.Job`)."""
        run_id = key.run_id(self.points)
        # Absolute: a Ray worker on another node does not share the driver's working directory.
        return self.points[key.point], key, self.out.resolve() / "runs" / run_id, run_id, self.digest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        """``manifest.json``, replaced atomically: a killed driver leaves the old one or the new one."""
        atomic_write_bytes(self.out / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())


class _Progress:
    """How a batch shows its runs finishing: a bar on a terminal, else one line per run to ``say``."""

    def __init__(self, total: int, started: float, show_bar: bool, say: Callable[[str], None]):
        self.total = total
        self.started = started
        self.show_bar = show_bar
        self.say = say
        self.n = 0
        self.impressions = 0
        self.wall_s = 0.0
        self.bar = tqdm(total=total, unit="run", file=sys.stderr, disable=not show_bar or not total)

    def finished(self, outcome: RunOutcome) -> None:
        """Count ``outcome`` and show it: the bar moves, or a line with the rate and the time left."""
        self.n += 1
        if outcome.error is None:
            self.impressions += outcome.impressions
            self.wall_s += outcome.wall_s
        elapsed = time.time() - self.started
        if self.show_bar:  # all processes together: what the batch as a whole achieves
            self.bar.set_postfix_str(f"{self.impressions / elapsed:,.0f} impressions/s", refresh=False)
            self.bar.update()
        else:
            eta = elapsed / self.n * (self.total - self.n)
            rate = self.impressions / self.wall_s if self.wall_s else 0.0
            status = "FAILED" if outcome.error else f"{outcome.impressions:,} impressions"
            self.say(f"[{self.n}/{self.total}] {outcome.run_id}: {status}; {rate:,.0f} impressions/s per "
                     f"process; elapsed {elapsed:,.0f} s, ETA {eta:,.0f} s")
        if outcome.error:
            self.say(f"run {outcome.run_id} failed:\n{outcome.error}")


def _os_error(exc: OSError, out: Path) -> str:
    """An OSError while writing results, in words that name the file and what to do."""
    where = exc.filename or out
    if exc.errno == errno.ENOSPC:
        return f"{where}: no space left on the device; free some and run the same command again to resume"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: cannot write here ({exc.strerror}); choose another --out"
    return f"{where}: {exc.strerror or exc}"


def git_revision() -> str | None:
    """The commit of the feedsim checkout this runs from; ``None`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_changes(checkout: Path | None = None) -> list[str] | None:
    """The tracked files of the checkout (``checkout``, by default the one this runs from) that
    differ from its commit, as paths from its root: a batch run from an edited checkout is not the
    commit its manifest names, and says so.  Untracked files (results, a ``.venv``) are left out.
    ``None`` outside a git checkout or without git."""
    try:
        # -z: paths as they are (no quoting), a rename as "XY new\0old\0"; no optional index lock
        # while a user commits during a batch.
        out = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=no"],
                             capture_output=True, text=True, timeout=10,
                             cwd=checkout or Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    fields, paths = out.stdout.split("\0"), []
    i = 0
    while i < len(fields):
        entry = fields[i]
        if len(entry) > 3:
            paths.append(entry[3:])
            if "R" in entry[:2] or "C" in entry[:2]:
                i += 1  # the old path of a rename or copy
        i += 1
    return sorted(paths)


def _versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide a run's numbers, for the manifest."""
    import numpy
    import scipy
    import simpy

    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "simpy": simpy.__version__, "pyarrow": pa.__version__}
