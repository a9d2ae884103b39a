"""Expand an experiment into runs, execute them, write results atomically, resume.

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

Executors (``serial``, ``processes``, ``ray_cluster``) all call the same per-run
function, :func:`_execute_safely`, so the tables are byte-identical whichever runs
them; they differ only in where the runs go.  Each run writes its own folder; the
driver alone writes the manifest and the combined tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from sim import metrics
from sim.config import Experiment, Point, RankerSpec, points, to_dict
from sim.recording import make_table
from sim.rng import stream_seed

TABLES = ("runs", "focal", "posts", "promotions", "timeseries", "measures")


@dataclass(frozen=True)
class RunKey:
    """One run: a sweep point, a ranker (by position in the file) and a replicate."""

    point: int
    ranker: int
    replicate: int

    def run_id(self, pts: list[Point]) -> str:
        spec = pts[self.point].exp.rankers[self.ranker]
        point = f"-p{self.point}" if len(pts) > 1 else ""
        return f"{spec.label or spec.name}{point}-r{self.replicate}"


@dataclass
class RunOutcome:
    run_id: str
    impressions: int = 0
    wall_s: float = 0.0
    error: str | None = None


class RunnerError(RuntimeError):
    """A problem with the results folder or the requested runs."""


class Interrupted(RunnerError):
    """Ctrl-C stopped the batch; finished runs are kept and the same command resumes it."""


#: Experiment fields that do not change what any one run is, so changing them does not make a
#: results folder hold a different configuration (the manifest takes the file's current ones): how
#: results are presented, and how many replicates there are (a replicate's random streams depend on
#: the seed and its index alone, so raising ``replicates`` adds runs and keeps the finished ones).
NOT_HASHED = ("highlights", "description", "replicates")


def config_hash(exp: Experiment) -> str:
    config = {k: v for k, v in to_dict(exp).items() if k not in NOT_HASHED}
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(pts: list[Point], only: dict[str, str] | None = None) -> list[RunKey]:
    """Every point x ranker x replicate (replicate-major), filtered by ``--only``."""
    exp = pts[0].exp
    keys = [RunKey(p.index, r, rep) for rep in range(exp.replicates) for p in pts
            for r in range(len(exp.rankers))]
    if not only:
        return keys
    unknown = set(only) - {"ranker", "replicate", "point"}
    if unknown:
        raise RunnerError(f"--only: unknown key(s) {', '.join(sorted(unknown))} (known: ranker, replicate, point)")
    out = []
    for k in keys:
        spec = exp.rankers[k.ranker]
        if "ranker" in only and only["ranker"] != (spec.label or spec.name):
            continue
        if "replicate" in only and only["replicate"] != str(k.replicate):
            continue
        if "point" in only and only["point"] != str(k.point):
            continue
        out.append(k)
    if not out:
        raise RunnerError(f"--only {only}: matches no run")
    return out


def sweep_columns(params: dict[str, Any]) -> dict[str, Any]:
    """Result columns of a sweep point: ``sweep_<key, runs of other characters than letters and
    digits as one underscore>`` (``world.accounts[0].bought_followers`` ->
    ``sweep_world_accounts_0_bought_followers``)."""
    return {"sweep_" + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_"): value for key, value in params.items()}


def execute(point: Point, key: RunKey, run_dir: Path, run_id: str,
            stop: Callable[[], bool] | None = None) -> RunOutcome:
    """Run one simulation and write its tables to ``run_dir`` atomically.  ``stop``: see
    :meth:`sim.engine.Simulation.run`."""
    from sim.engine import Simulation

    spec: RankerSpec = point.exp.rankers[key.ranker]
    sim = Simulation(point.exp, spec, key.replicate, run_id=run_id)
    recorder = sim.run(stop)
    tmp = run_dir.with_name(run_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    extra = sweep_columns(point.params)
    for name, table in recorder.tables.items():
        for column, value in extra.items():
            table = table.append_column(column, pa.array([value] * table.num_rows, type=pa.array([value]).type))
        write_parquet(table, tmp / f"{name}.parquet")
    (tmp / "run.json").write_text(json.dumps({"run_id": run_id, "impressions": sim.impressions,
                                              "wall_s": sim.wall_s}))
    os.replace(tmp, run_dir)
    return RunOutcome(run_id, sim.impressions, sim.wall_s)


def _execute_safely(point: Point, key: RunKey, run_dir: Path, run_id: str,
                    stop: Callable[[], bool] | None = None) -> RunOutcome:
    from sim.engine import RunStopped

    if stop is not None and stop():  # queued behind the runs in flight when the batch was stopped
        return RunOutcome(run_id, error="not started: the batch was stopped")
    try:
        return execute(point, key, run_dir, run_id, stop)
    except RunStopped as exc:
        return RunOutcome(run_id, error=f"not finished: {exc}")
    except Exception:  # a user's ranker may raise anything; report it with its run and parameters
        spec = point.exp.rankers[key.ranker]
        where = f"ranker {spec.label or spec.name} ({spec.name}), replicate {key.replicate}"
        if point.params:
            where += f", sweep point {point.index} {point.params}"
        return RunOutcome(run_id, error=f"{where}\n{traceback.format_exc()}")


Job = tuple[Point, RunKey, Path, str]
"""The arguments of :func:`_execute_safely` for one run."""

Outcomes = Generator[RunOutcome, None, None]
"""Outcomes as runs finish; closing the generator stops the runs in flight."""

Executor = Callable[[list[Job]], Outcomes]
"""Runs jobs wherever it runs them: :func:`serial`, :func:`processes` or :func:`ray_cluster`."""


def serial(jobs: list[Job]) -> Outcomes:
    """One run after another, in this process.

    Ctrl-C stops the run in progress at its next tick and then the batch (KeyboardInterrupt, as
    from the other executors), not at once: raised inside numba's compiler, which a run may be in
    (a ranker's first use in the process), a KeyboardInterrupt is swallowed or crashes the
    process.  A second Ctrl-C interrupts at once."""
    stopping = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.set()

    try:
        previous: Any = signal.signal(signal.SIGINT, on_sigint)
        installed = True
    except ValueError:  # not the main thread: Ctrl-C is not this batch's to handle
        installed = False
    try:
        for job in jobs:
            if stopping.is_set():
                raise KeyboardInterrupt
            outcome = _execute_safely(*job, stop=stopping.is_set)
            if stopping.is_set() and outcome.error is not None:
                raise KeyboardInterrupt  # the run stopped unfinished (it wrote nothing)
            yield outcome
    finally:
        if installed:  # None: the handler was not set from Python; Python's own is the one to put back
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the driver alone decides what happens to the runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def processes(workers: int) -> Executor:
    """Runs spread over ``workers`` local processes, a fresh process per run: memory a run
    leaves fragmented is returned to the system, so a batch peaks at one run per worker."""

    def run(jobs: list[Job]) -> Outcomes:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), max_tasks_per_child=1,
                                   initializer=_ignore_sigint)
        try:
            run_ids: dict[Future[RunOutcome], str] = {pool.submit(_execute_safely, *job): job[3] for job in jobs}
            pending = set(run_ids)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    exc = fut.exception()
                    yield fut.result() if exc is None else RunOutcome(
                        run_ids[fut], error=f"not finished: a worker process died (killed, or out of memory?) and "
                                            f"the pool stopped; run the same command again to resume ({exc!r})")
        except BaseException:
            # Interrupted: stop the runs in flight now rather than wait for them (Python 3.14 has
            # ProcessPoolExecutor.terminate_workers for this).
            for process in list(pool._processes.values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    return run


def _execute_job(job: Job, stop: Callable[[], bool]) -> RunOutcome:
    return _execute_safely(*job, stop=stop)


class StopFile:
    """True once ``path`` exists: how a driver asks runs on other machines to stop.  Looks at
    most every ``every_s`` seconds, so a shared filesystem is not asked once a tick."""

    def __init__(self, path: Path, every_s: float = 0.5):
        self.path = path
        self.every_s = every_s
        self._next = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.every_s
        return self.path.exists()


def ray_cluster(address: str | None) -> Executor:
    """Runs spread over a Ray cluster, one CPU and a fresh worker process per run.

    ``address``: ``host:port`` of the head node; ``None`` connects to ``RAY_ADDRESS`` or a cluster
    started on this machine with ``ray start``, else starts a local Ray.  Every node must see the
    results folder at the same path (one machine, or a shared filesystem) and have feedsim installed.
    """

    def run(jobs: list[Job]) -> Outcomes:
        if not jobs:
            return
        try:
            import ray
        except ImportError:
            raise RunnerError("--executor ray needs Ray: pip install 'feedsim[ray]'") from None
        connected_here = not ray.is_initialized()
        if connected_here:
            ray.init(address=address, logging_level=logging.WARNING)
        remote = ray.remote(num_cpus=1, max_calls=1)(_execute_job)
        # One name per batch, beside the runs (every node sees the results folder): a file left by
        # a driver killed outright never stops a later batch.
        stop = jobs[0][2].parent.parent / f".stop-{os.getpid()}-{time.time_ns()}"
        queue = list(jobs)
        in_flight: dict[Any, str] = {}

        def submit() -> None:
            job = queue.pop(0)
            in_flight[remote.remote(job, StopFile(stop))] = job[3]

        # As many runs in flight as the cluster has CPUs, and one more each: Ray always has the next
        # one ready, and a stopped batch has few runs to wait for.
        for _ in range(min(len(queue), 2 * max(1, int(ray.cluster_resources().get("CPU", 1))))):
            submit()
        try:
            while in_flight:
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                run_id = in_flight.pop(ref)
                if queue:
                    submit()
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died; the run's own errors are caught in it
                    outcome = RunOutcome(run_id, error=f"Ray lost the run: {exc}")
                yield outcome
        finally:
            # Interrupted: the runs in flight stop themselves at their next tick, and those not yet
            # started stop at their first, each ending as a task that returned.  Not ray.cancel: a
            # cancel racing a task's completion trips a check in Ray's task manager (2.60, with
            # force=True or not: "Tried to complete task that was not pending") and aborts the
            # driver.  Waiting for them means no run writes a folder after the driver has cleared;
            # the file stays if some did not answer, so that they still stop.
            try:
                if in_flight:
                    stop.touch()
                    _, unanswered = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=120)
                    if not unanswered:
                        stop.unlink(missing_ok=True)
            finally:
                if connected_here:
                    ray.shutdown()

    return run


def write_parquet(table: pa.Table, path: Path) -> None:
    """Deterministic Parquet: same table, same bytes."""
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=True)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    import numpy
    import scipy
    import simpy

    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "simpy": simpy.__version__, "pyarrow": pa.__version__}


class Runner:
    """Runs an experiment's runs into ``out``: ``executor`` ``"process"`` with ``jobs`` local
    processes, or ``"ray"`` on the cluster at ``ray_address``.

    Progress: a bar on a terminal; otherwise, or when ``progress`` is given, one line per run.
    """

    def __init__(self, exp: Experiment, out: Path, jobs: int = 1, force: bool = False,
                 overrides: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None,
                 executor: str = "process", ray_address: str | None = None):
        self.exp = exp
        self.points = points(exp)
        self.out = Path(out)
        self.jobs = max(1, jobs)
        self.force = force
        self.overrides = overrides or {}
        self.show_bar = progress is None and sys.stderr.isatty()
        self.progress = progress or (lambda line: tqdm.write(line, file=sys.stderr))
        if executor not in ("process", "ray"):
            raise RunnerError(f"unknown executor {executor!r} (known: process, ray)")
        self.executor = executor
        self.ray_address = ray_address

    def _executor(self, n_runs: int) -> Executor:
        if self.executor == "ray":
            return ray_cluster(self.ray_address)
        return serial if self.jobs == 1 or n_runs <= 1 else processes(self.jobs)

    def _prepare(self) -> dict[str, Any]:
        manifest_path = self.out / "manifest.json"
        digest = config_hash(self.exp)
        if manifest_path.exists():
            try:
                old = json.loads(manifest_path.read_text())
            except json.JSONDecodeError:
                old = {}
            if old.get("config_hash") != digest:
                if not self.force:
                    raise RunnerError(
                        f"{self.out}: holds results of a different configuration "
                        f"(hash {old.get('config_hash')} vs {digest}); use --force to replace them, "
                        f"or --out to write elsewhere")
                shutil.rmtree(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "runs").mkdir(exist_ok=True)
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            revision = _git_revision()
            if manifest.get("git_revision") and revision and manifest["git_revision"] != revision:
                self.progress(f"warning: {self.out} was started at revision {manifest['git_revision'][:10]}, this "
                              f"is {revision[:10]}: finished runs are kept, and a model change in between "
                              f"would mix into the results (--force reruns them all)")
            current = to_dict(self.exp)
            manifest["config"].update({k: current[k] for k in NOT_HASHED})
            return manifest
        return {"experiment": self.exp.name, "config_hash": digest, "config": to_dict(self.exp),
                "overrides": self.overrides, "seed": self.exp.seed,
                "sweep_points": [p.params for p in self.points], "versions": _versions(),
                "git_revision": _git_revision(), "runs": {}}

    def run(self, keys: Iterable[RunKey]) -> list[RunOutcome]:
        manifest = self._prepare()
        keys = list(keys)
        todo = [k for k in keys if not (self.out / "runs" / k.run_id(self.points)).exists()]
        skipped = len(keys) - len(todo)
        if skipped:
            self.progress(f"resuming: {skipped} of {len(keys)} runs already finished")
            for key in keys:  # a run that finished while its batch was being stopped is in no manifest yet
                run_id = key.run_id(self.points)
                info = self.out / "runs" / run_id / "run.json"
                if run_id not in manifest["runs"] and info.exists():
                    written = json.loads(info.read_text())
                    manifest["runs"][run_id] = {"impressions": written["impressions"],
                                                "wall_s": round(written["wall_s"], 3)}
        started = time.time()
        outcomes: list[RunOutcome] = []
        done_impressions, done_wall = 0, 0.0
        bar = tqdm(total=len(todo), unit="run", file=sys.stderr, disable=not self.show_bar or not todo)

        def finished(outcome: RunOutcome) -> None:
            nonlocal done_impressions, done_wall
            outcomes.append(outcome)
            if outcome.error is None:
                done_impressions += outcome.impressions
                done_wall += outcome.wall_s
                manifest["runs"][outcome.run_id] = {"impressions": outcome.impressions,
                                                    "wall_s": round(outcome.wall_s, 3)}
                self._write_manifest(manifest)
            n = len(outcomes)
            elapsed = time.time() - started
            if self.show_bar:  # all processes together: what the batch as a whole achieves
                bar.set_postfix_str(f"{done_impressions / elapsed:,.0f} impressions/s", refresh=False)
                bar.update()
            else:
                eta = elapsed / n * (len(todo) - n)
                rate = done_impressions / done_wall if done_wall else 0.0
                status = "FAILED" if outcome.error else f"{outcome.impressions:,} impressions"
                self.progress(f"[{n}/{len(todo)}] {outcome.run_id}: {status}; {rate:,.0f} impressions/s per "
                              f"process; elapsed {elapsed:,.0f} s, ETA {eta:,.0f} s")
            if outcome.error:
                self.progress(f"run {outcome.run_id} failed:\n{outcome.error}")

        try:
            with bar, contextlib.closing(self._executor(len(todo))([self._job(k) for k in todo])) as stream:
                for outcome in stream:
                    finished(outcome)
        except KeyboardInterrupt:
            for key in todo:
                shutil.rmtree(self.out / "runs" / f"{key.run_id(self.points)}.tmp", ignore_errors=True)
            n_finished = skipped + sum(o.error is None for o in outcomes)
            raise Interrupted(f"interrupted: {n_finished} of {len(keys)} runs finished in "
                              f"{self.out}; run the same command again to resume (finished runs are "
                              f"skipped)") from None
        wall = time.time() - started
        self.combine()
        total_imp = sum(v["impressions"] for v in manifest["runs"].values())
        total_wall = sum(v["wall_s"] for v in manifest["runs"].values())
        manifest.update({
            "jobs": self.jobs, "executor": self.executor, "wall_s": round(wall, 3),
            "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "impressions_per_s": round(total_imp / total_wall, 1) if total_wall else None,
            "finished": sorted(manifest["runs"]),
        })  # fmt: skip
        self._write_manifest(manifest)
        return outcomes

    def _job(self, key: RunKey) -> Job:
        run_id = key.run_id(self.points)
        # Absolute: a Ray worker on another node does not share the driver's working directory.
        return self.points[key.point], key, self.out.resolve() / "runs" / run_id, run_id

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        _atomic_write_bytes(self.out / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())

    def _summary(self) -> None:
        """summary.parquet: per ranker, mean and CI of every metric, and paired differences."""
        path = self.out / "runs.parquet"
        if not path.exists():
            return
        runs = pq.read_table(path).to_pydict()
        measures_path = self.out / "measures.parquet"
        if measures_path.exists():
            runs.update(measure_columns(runs["run_id"], pq.read_table(measures_path).to_pydict()))
        labels = [s.label or s.name for s in self.exp.rankers]
        base_point = self.exp.baseline_point if self.exp.baseline_point >= 0 else None
        columns = metrics.summarise(runs, labels, self.exp.baseline or None, _bootstrap_rng(self.exp),
                                    groups=sorted(sweep_columns(self.points[0].params)), base_point=base_point)
        table = make_table("summary", columns)
        for column in sorted(sweep_columns(self.points[0].params)):
            table = table.append_column(column, pa.array(columns[column]))
        tmp = self.out / ".summary.parquet.tmp"
        write_parquet(table, tmp)
        os.replace(tmp, self.out / "summary.parquet")

    def combine(self) -> None:
        """Concatenate every finished run's tables (in plan order) into the top-level tables."""
        run_dirs = [self.out / "runs" / k.run_id(self.points) for k in plan(self.points)]
        run_dirs = [d for d in run_dirs if d.exists()]
        for name in TABLES:  # every schema checked before any combined table is replaced
            schemas = [pq.read_schema(d / f"{name}.parquet") for d in run_dirs]
            odd = next((d.name for d, sch in zip(run_dirs, schemas, strict=True) if sch != schemas[0]), None)
            if odd is not None:
                raise RunnerError(
                    f"{self.out}: run {odd}'s {name} table has other columns than run {run_dirs[0].name}'s "
                    f"(runs written by different feedsim versions); rerun with --force")
        for name in TABLES:
            tables = [pq.read_table(d / f"{name}.parquet") for d in run_dirs]
            if tables:
                tmp = self.out / f".{name}.parquet.tmp"
                write_parquet(pa.concat_tables(tables), tmp)
                os.replace(tmp, self.out / f"{name}.parquet")
        self._summary()
        imp_root = self.out / "impressions"
        imp_root.mkdir(exist_ok=True)
        for d in run_dirs:
            part = imp_root / f"run_id={d.name}"
            if not part.exists():
                tmp = imp_root / f".run_id={d.name}.tmp"
                tmp.mkdir(exist_ok=True)
                shutil.copyfile(d / "impressions.parquet", tmp / "part-0.parquet")
                os.replace(tmp, part)


def measure_columns(run_ids: list[str], measures: dict[str, list[Any]]) -> dict[str, list[float | None]]:
    """The ``measures`` table as one column per ``<kind>.<entity>.<metric>``, aligned with ``run_ids``."""
    row = {run_id: i for i, run_id in enumerate(run_ids)}
    out: dict[str, list[float | None]] = {}
    for run_id, kind, entity, metric, value in zip(measures["run_id"], measures["kind"], measures["entity"],
                                                   measures["metric"], measures["value"], strict=True):
        column = out.setdefault(f"{kind}.{entity}.{metric}", [None] * len(run_ids))
        column[row[run_id]] = value
    return out


def _bootstrap_rng(exp: Experiment) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(stream_seed(exp.seed, 0, "bootstrap")))


def summary_lines(out: Path, exp: Experiment) -> list[str]:
    """A short table per ranker: median and range of the focal metrics."""
    path = out / "runs.parquet"
    if not path.exists():
        return []
    runs = pq.read_table(path).to_pydict()
    metrics = [("focal_reach_ratio", "reach ratio", "{:,.0f}x"), ("focal_reach_share", "users reached", "{:.1%}"),
               ("focal_non_follower_share", "non-follower share", "{:.1%}"),
               ("focal_sellout_hours", "sell-out (h)", "{:,.1f}"),
               ("low_follower_breakout_rate", "10-99-follower breakouts", "{:.2%}"),
               ("median_daily_watch_min", "median daily watch (min)", "{:.1f}")]
    lines = [f"{'ranker':<14}{'metric':<28}{'median':>12}{'min':>12}{'max':>12}  runs"]
    labels = [s.label or s.name for s in exp.rankers]
    for label in labels:
        idx = [i for i, r in enumerate(runs["ranker"]) if r == label]
        for col, title, fmt in metrics:
            values = [runs[col][i] for i in idx]
            present = np.array([v for v in values if v is not None], dtype=float)
            if len(present) == 0:
                cells = ["none"] * 3
            else:
                cells = [fmt.format(v) for v in (np.median(present), present.min(), present.max())]
            lines.append(f"{label:<14}{title:<28}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}  "
                         f"{len(present)}/{len(values)}")
    return lines
