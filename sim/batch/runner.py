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
import errno
import hashlib
import json
import logging
import multiprocessing
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
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from sim.analysis import metrics
from sim.batch.folder import (
    FORMAT,
    FolderError,
    check_place,
    checksums,
    clear,
    clear_stale_temporaries,
    locked,
    read_manifest,
    verify_run,
)
from sim.config import (
    Experiment,
    Point,
    RankerSpec,
    estimate_peak_bytes,
    format_bytes,
    machine_memory_bytes,
    points,
    to_dict,
)
from sim.model.rng import stream_seed
from sim.recording import make_table, sweep_field

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
    """Ctrl-C (or SIGTERM: ``terminated``) stopped the batch; finished runs are kept and the same
    command resumes it."""

    def __init__(self, message: str, terminated: bool = False):
        super().__init__(message)
        self.terminated = terminated


#: Where runs go: local processes (one per run), this process, or a Ray cluster.
EXECUTORS = ("process", "serial", "ray")


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


def execute(point: Point, key: RunKey, run_dir: Path, run_id: str, digest: str = "",
            stop: Callable[[], bool] | None = None) -> RunOutcome:
    """Run one simulation and write its tables to ``run_dir`` atomically.

    ``digest`` is the batch's configuration hash; ``run.json`` records it beside a checksum of
    every file, so that a resume keeps the run only for this configuration and only intact
    (:func:`sim.batch.folder.verify_run`).  ``stop``: see :meth:`sim.engine.Simulation.run`."""
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
            values = pa.array([value] * table.num_rows, type=pa.array([value]).type)
            table = table.append_column(sweep_field(column, values.type), values)
        write_parquet(table, tmp / f"{name}.parquet")
    (tmp / "run.json").write_text(json.dumps({"run_id": run_id, "impressions": sim.impressions,
                                              "wall_s": sim.wall_s, "config_hash": digest,
                                              "files": checksums(tmp)}))
    if run_dir.exists():  # left by a batch killed outright after its rename: it is redone, so replaced
        shutil.rmtree(run_dir)
    os.replace(tmp, run_dir)
    return RunOutcome(run_id, sim.impressions, sim.wall_s)


def _where(point: Point, key: RunKey) -> str:
    """The run in words, for an error: its ranker, replicate and sweep point."""
    spec = point.exp.rankers[key.ranker]
    where = f"ranker {spec.label or spec.name} ({spec.name}), replicate {key.replicate}"
    if point.params:
        where += f", sweep point {point.index} {point.params}"
    return where


def _execute_safely(point: Point, key: RunKey, run_dir: Path, run_id: str, digest: str = "",
                    stop: Callable[[], bool] | None = None) -> RunOutcome:
    from sim.engine import RunStopped

    if stop is not None and stop():  # queued behind the runs in flight when the batch was stopped
        return RunOutcome(run_id, error="not started: the batch was stopped")
    try:
        return execute(point, key, run_dir, run_id, digest, stop)
    except RunStopped as exc:
        return RunOutcome(run_id, error=f"not finished: {exc}")
    except Exception:  # a user's ranker may raise anything; report it with its run and parameters
        return RunOutcome(run_id, error=f"{_where(point, key)}\n{traceback.format_exc()}")


Job = tuple[Point, RunKey, Path, str, str]
"""The arguments of :func:`_execute_safely` for one run: point, key, run folder, run id, config hash."""

Outcomes = Generator[RunOutcome, None, None]
"""Outcomes as runs finish; closing the generator stops the runs in flight."""

Executor = Callable[[list[Job]], Outcomes]
"""Runs jobs wherever it runs them: :func:`serial`, :func:`processes` or :func:`ray_cluster`."""


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the driver: the batch stops as on Ctrl-C."""


def serial(jobs: list[Job]) -> Outcomes:
    """One run after another, in this process (``--executor serial``: for a debugger; a ranker
    that ends its process, with ``os._exit`` say, ends the batch with it).

    Ctrl-C or SIGTERM stops the run in progress at its next tick and then the batch
    (KeyboardInterrupt, as from the other executors), not at once: raised inside numba's compiler,
    which a run may be in (a ranker's first use in the process), a KeyboardInterrupt is swallowed
    or crashes the process.  A second signal interrupts at once."""
    with _signals_as_flag(second_raises=True) as stopping:
        for job in jobs:
            stopping.check()
            outcome = _execute_safely(*job, stop=stopping.is_set)
            if stopping.is_set() and outcome.error is not None:
                stopping.check()  # the run stopped unfinished (it wrote nothing)
            yield outcome


def _die_with(parent: int) -> None:
    """Make this worker process end when its driver ``parent`` does, even if the driver is killed
    outright: the kernel's parent-death signal where there is one (Linux), and a watchdog thread
    on the parent's pid everywhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() != parent:  # the driver died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="feedsim-watchdog", daemon=True).start()


def _worker(job: Job, conn: Any, parent: int) -> None:
    """One run in a process of its own; sends its outcome down ``conn``."""
    _die_with(parent)
    # Ctrl-C reaches the whole process group; the driver alone decides what happens to the runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    point, key, _, run_id, _ = job
    try:
        outcome = _execute_safely(*job)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and the like: this run fails, the batch goes on
        outcome = RunOutcome(run_id, error=f"{_where(point, key)}: the run raised {exc!r}\n{traceback.format_exc()}")
    conn.send(outcome)
    conn.close()


def _died(job: Job, exitcode: int | None) -> RunOutcome:
    point, key, _, run_id, _ = job
    if exitcode is not None and exitcode < 0:
        how = f"was killed by signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with code {exitcode} before finishing (does the ranker call os._exit?)"
    return RunOutcome(run_id, error=f"{_where(point, key)}: the run's process {how}; the other runs go on")


def processes(workers: int) -> Executor:
    """Runs spread over ``workers`` local processes, a fresh process per run.

    A process per run isolates runs from each other and from the driver: a run whose process
    dies (a ranker calling ``os._exit``, the kernel's out-of-memory killer) fails alone, named;
    memory a run leaves fragmented goes back to the system, so a batch peaks at one run per
    worker.  Workers end with their driver, even one killed outright (:func:`_die_with`)."""

    def run(jobs: list[Job]) -> Outcomes:
        context = multiprocessing.get_context()
        queue = list(jobs)
        live: dict[Any, tuple[Any, Any, Job]] = {}  # sentinel -> (process, connection, job)

        def start() -> None:
            job = queue.pop(0)
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(job, send, os.getpid()), name=f"feedsim {job[3]}",
                                      daemon=True)
            process.start()
            send.close()
            live[process.sentinel] = (process, receive, job)

        try:
            with _signals_as_flag() as stopping:
                while queue or live:
                    while queue and len(live) < workers:
                        start()
                        stopping.check()
                    yield from _collect(live, stopping)
        finally:
            # Interrupted (or the generator closed): the runs in flight stop now.
            for process, _conn, _ in live.values():
                process.terminate()
            for process, conn, _ in live.values():
                process.join()
                conn.close()

    return run


def _collect(live: dict[Any, tuple[Any, Any, Job]], stopping: _StopSignals) -> Outcomes:
    """Outcomes of the runs in ``live`` (sentinel -> process, connection, job) that finished; waits
    for at least one, in slices so that a stop signal is acted on within a fraction of a second."""
    while True:
        stopping.check()
        ready_any = mp_connection.wait([*live, *(conn for _, conn, _ in live.values())], timeout=0.2)
        if ready_any:
            break
    for ready in ready_any:
        entry = live.get(ready) or next((v for v in live.values() if v[1] is ready), None)
        if entry is None:  # its process and its connection were both ready: handled
            continue
        process, conn, job = entry
        try:
            outcome = conn.recv() if conn.poll() else None
        except (EOFError, OSError):
            outcome = None
        process.join()
        conn.close()
        del live[process.sentinel]
        yield outcome if outcome is not None else _died(job, process.exitcode)


class _StopSignals:
    """Ctrl-C or SIGTERM, noted by the handler and acted on where the driver can stop cleanly.

    Raising from the handler would land anywhere, in the middle of a fork included, where Python
    ignores the exception ("Exception ignored in ... _releaseLock") and the batch runs on."""

    def __init__(self, second_raises: bool = False) -> None:
        self.received: int | None = None
        self.second_raises = second_raises

    def __call__(self, signum: int, frame: Any) -> None:
        first = self.received is None
        self.received = signum
        if not first and self.second_raises:  # asked twice: at once
            self.check()

    def is_set(self) -> bool:
        return self.received is not None

    def check(self) -> None:
        if self.received == signal.SIGTERM:
            raise Terminated
        if self.received is not None:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_as_flag(second_raises: bool = False) -> Generator[_StopSignals, None, None]:
    """SIGINT and SIGTERM set the flag it yields, while the block runs in the main thread."""
    stopping = _StopSignals(second_raises)
    previous: dict[int, Any] = {}
    try:
        for asked in (signal.SIGINT, signal.SIGTERM):
            previous[asked] = signal.signal(asked, stopping)
    except ValueError:  # not the main thread: signals are not this batch's to handle
        pass
    try:
        yield stopping
    finally:
        for signum, handler in previous.items():
            default: Any = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            signal.signal(signum, default if handler is None else handler)


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


@contextlib.contextmanager
def _sigterm_interrupts() -> Generator[None, None, None]:
    """SIGTERM to the driver stops the batch as Ctrl-C does (raises :class:`Terminated`), where
    this is the main thread; the serial executor sets its own handler over this one."""
    def on_sigterm(signum: int, frame: Any) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _os_error(exc: OSError, out: Path) -> str:
    """An OSError while writing results, in words that name the file and what to do."""
    where = exc.filename or out
    if exc.errno == errno.ENOSPC:
        return f"{where}: no space left on the device; free some and run the same command again to resume"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: cannot write here ({exc.strerror}); choose another --out"
    return f"{where}: {exc.strerror or exc}"


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
        if old is not None and old.get("config_hash") != self.digest:
            if not self.force:
                raise RunnerError(
                    f"{self.out}: holds results of a different configuration "
                    f"(hash {old.get('config_hash')} vs {self.digest}); use --force to replace them, "
                    f"or --out to write elsewhere")
            kept = clear(self.out)
            self.progress(f"--force: removed the results feedsim wrote in {self.out}"
                          + (f"; kept what it did not write: {', '.join(kept)}" if kept else ""))
            old = None
        stale = clear_stale_temporaries(self.out)
        if stale:
            self.progress(f"removed {len(stale)} temporary file(s) an interrupted batch left: {', '.join(stale[:4])}"
                          + (", ..." if len(stale) > 4 else ""))
        (self.out / "runs").mkdir(exist_ok=True)
        if old is not None:
            revision = _git_revision()
            if old.get("git_revision") and revision and old["git_revision"] != revision:
                self.progress(f"warning: {self.out} was started at revision {old['git_revision'][:10]}, this "
                              f"is {revision[:10]}: finished runs are kept, and a model change in between "
                              f"would mix into the results (--force reruns them all)")
            current = to_dict(self.exp)
            old["config"].update({k: current[k] for k in NOT_HASHED})
            old.update({"format": FORMAT, "command": self.command, "quick": self.quick})
            return old
        return {"format": FORMAT, "experiment": self.exp.name, "config_hash": self.digest,
                "config": to_dict(self.exp), "overrides": self.overrides, "seed": self.exp.seed,
                "command": self.command, "quick": self.quick,
                "sweep_points": [p.params for p in self.points], "versions": _versions(),
                "git_revision": _git_revision(), "runs": {}}

    def _finished_runs(self, keys: list[RunKey], manifest: dict[str, Any]) -> list[RunKey]:
        """The runs of ``keys`` already finished here for this configuration and intact; a run
        folder that fails :func:`verify_run` is removed (and said) so that it is redone."""
        runs = self.out / "runs"
        kept = []
        for key in keys:
            run_id = key.run_id(self.points)
            run_dir = runs / run_id
            partition = self.out / "impressions" / f"run_id={run_id}"
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
            with locked(self.out, self.command):
                outcomes = self._run_locked(list(keys))
                if after is not None:
                    after(outcomes)
                return outcomes
        except FolderError as exc:
            raise RunnerError(str(exc)) from None
        except OSError as exc:
            raise RunnerError(_os_error(exc, self.out)) from None

    def _run_locked(self, keys: list[RunKey]) -> list[RunOutcome]:
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
            with bar, _sigterm_interrupts(), \
                    contextlib.closing(self._executor()([self._job(k) for k in todo])) as stream:
                for outcome in stream:
                    finished(outcome)
        except KeyboardInterrupt as exc:
            for key in todo:
                shutil.rmtree(self.out / "runs" / f"{key.run_id(self.points)}.tmp", ignore_errors=True)
            n_finished = skipped + sum(o.error is None for o in outcomes)
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            raise Interrupted(f"{how}: {n_finished} of {len(keys)} runs finished in "
                              f"{self.out}; run the same command again to resume (finished runs are "
                              f"skipped)", terminated=isinstance(exc, Terminated)) from None
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
        return self.points[key.point], key, self.out.resolve() / "runs" / run_id, run_id, self.digest

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
            values = pa.array(columns[column])
            table = table.append_column(sweep_field(column, values.type), values)
        tmp = self.out / ".summary.parquet.tmp"
        write_parquet(table, tmp)
        os.replace(tmp, self.out / "summary.parquet")

    def combine(self) -> None:
        """Concatenate every finished run's tables (in plan order) into the top-level tables."""
        run_dirs = [self.out / "runs" / k.run_id(self.points) for k in plan(self.points)]
        run_dirs = [d for d in run_dirs if d.exists()]
        for name in TABLES:  # every schema checked before any combined table is replaced
            schemas = [_read(pq.read_schema, d / f"{name}.parquet") for d in run_dirs]
            odd = next((d.name for d, sch in zip(run_dirs, schemas, strict=True) if sch != schemas[0]), None)
            if odd is not None:
                raise RunnerError(
                    f"{self.out}: run {odd}'s {name} table has other columns than run {run_dirs[0].name}'s "
                    f"(runs written by different feedsim versions); rerun with --force")
        for name in TABLES:
            tables = [_read(pq.read_table, d / f"{name}.parquet") for d in run_dirs]
            target = self.out / f"{name}.parquet"
            if not tables:  # no run finished: no table, rather than one left from other runs
                target.unlink(missing_ok=True)
                continue
            tmp = self.out / f".{name}.parquet.tmp"
            try:
                write_parquet(pa.concat_tables(tables), tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk leaves no half-written table behind
                raise
            os.replace(tmp, target)
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


def _read(reader: Callable[[Path], Any], path: Path) -> Any:
    """``reader(path)`` for a run's Parquet file, an unreadable one named as such."""
    try:
        return reader(path)
    except (pa.ArrowException, OSError) as exc:
        raise RunnerError(f"{path}: unreadable ({exc}); run the same command again to redo that run") from None


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
    """The one bootstrap's generator (the experiment's named ``bootstrap`` stream); the report uses
    the same through :func:`sim.analysis.metrics.summarise` where a folder has no summary.parquet."""
    return np.random.Generator(np.random.PCG64(stream_seed(exp.seed, 0, "bootstrap")))


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
    lines = [f"{'ranker':<14}{'metric':<28}{'median':>12}{'min':>12}{'max':>12}  runs"]
    labels = [s.label or s.name for s in exp.rankers]
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
            lines.append(f"{label:<14}{title:<28}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}  "
                         f"{len(present)}/{len(values)}")
    return lines
