"""Executors: where a batch's runs go.  Each takes the batch's jobs and yields their outcomes as
runs finish; closing the generator stops the runs in flight.

- :func:`serial`: one run after another, in this process (for a debugger).
- :func:`processes`: a fresh local process per run, ``workers`` at a time.
- :func:`ray_cluster`: a fresh Ray worker per run, on a cluster.

All call :func:`sim.batch.execute.execute_safely`, so the tables do not depend on the executor.
Ctrl-C and SIGTERM are noted as a flag (:class:`_StopSignals`) and acted on where the driver can
stop cleanly; each executor then raises ``KeyboardInterrupt`` (:class:`Terminated` for SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

from sim.batch.execute import Job, RunOutcome, execute_safely, where
from sim.batch.plan import RunnerError

#: Where runs go: local processes (one per run), this process, or a Ray cluster.
EXECUTORS = ("process", "serial", "ray")

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
            outcome = execute_safely(*job, stop=stopping.is_set)
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
        outcome = execute_safely(*job)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and the like: this run fails, the batch goes on
        outcome = RunOutcome(run_id, error=f"{where(point, key)}: the run raised {exc!r}\n{traceback.format_exc()}")
    conn.send(outcome)
    conn.close()
    # At once: a thread a ranker started, or an atexit hook, must not keep a finished run's
    # process (and the driver waiting for it) alive.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _died(job: Job, exitcode: int | None) -> RunOutcome:
    """The outcome of a run whose process ended (``exitcode``: negative for a signal) without sending one."""
    point, key, _, run_id, _ = job
    if exitcode is not None and exitcode < 0:
        how = f"was killed by signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with code {exitcode} before finishing (does the ranker call os._exit?)"
    return RunOutcome(run_id, error=f"{where(point, key)}: the run's process {how}; the other runs go on")


def processes(workers: int) -> Executor:
    """Runs spread over ``workers`` local processes, a fresh process per run.

    A process per run isolates runs from each other and from the driver: a run whose process
    dies (a ranker calling ``os._exit``, the kernel's out-of-memory killer) fails alone, named;
    memory a run leaves fragmented goes back to the system, so a batch peaks at one run per
    worker.  Workers end with their driver, even one killed outright (:func:`_die_with`)."""

    def run(jobs: list[Job]) -> Outcomes:
        # fork where there is one: the worker's parent is then the driver, whose death it watches
        # (under forkserver, Python 3.14's default on Linux, the parent would be the server).
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
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
                process.join(timeout=10)
                if process.is_alive():  # a ranker that handles SIGTERM itself
                    process.kill()
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
        process.join(timeout=10)
        if process.is_alive():  # sent its outcome but does not end: it is not waited for
            process.kill()
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
    """One run as a Ray task: the job as one argument, ``stop`` a :class:`StopFile`."""
    return execute_safely(*job, stop=stop)


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
            with _signals_as_flag() as stopping:
                while in_flight:
                    ref = _next_done(ray, list(in_flight), stopping)
                    run_id = in_flight.pop(ref)
                    if queue:
                        submit()
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died; the run's own errors are caught in it
                        outcome = RunOutcome(run_id, error=f"Ray lost the run: {exc}")
                    yield outcome
        finally:
            try:
                _stop_in_flight(ray, list(in_flight), stop)
            finally:
                if connected_here:
                    ray.shutdown()

    return run


def _next_done(ray: Any, in_flight: list[Any], stopping: _StopSignals) -> Any:
    """The first of the Ray tasks ``in_flight`` to finish; waits in slices, so that a stop signal
    is acted on within a fraction of a second (a ``ray.wait`` without a timeout returns only when a
    task does, whatever the driver was sent meanwhile)."""
    while True:
        stopping.check()
        done, _ = ray.wait(in_flight, num_returns=1, timeout=0.2)
        if done:
            return done[0]


def _stop_in_flight(ray: Any, in_flight: list[Any], stop: Path) -> None:
    """Stop the Ray tasks ``in_flight`` of an interrupted batch through the stop file ``stop``.

    The runs in flight stop themselves at their next tick, and those not yet started stop at their
    first, each ending as a task that returned.  Not ``ray.cancel``: a cancel racing a task's
    completion trips a check in Ray's task manager (2.60, with force=True or not: "Tried to complete
    task that was not pending") and aborts the driver.  Waiting for them means no run writes a
    folder after the driver has cleared; the file stays if some did not answer, so that they still
    stop."""
    if not in_flight:
        return
    stop.touch()
    _, unanswered = ray.wait(in_flight, num_returns=len(in_flight), timeout=120)
    if not unanswered:
        stop.unlink(missing_ok=True)


@contextlib.contextmanager
def sigterm_interrupts() -> Generator[None, None, None]:
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
