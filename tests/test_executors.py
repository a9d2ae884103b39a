"""Executors: serial, a process pool and a multi-node Ray cluster give byte-identical results;
a failing run is reported and the others finish; Ctrl-C stops a batch that the same command resumes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import TINY_TOML

from sim.__main__ import main
from sim.batch.runner import TABLES, Runner, RunnerError, plan
from sim.config import load, points

TWO_REPLICATES = TINY_TOML.replace("replicates = 1", "replicates = 2")

BOOM_MODULE = '''\
from sim.rankers.base import Ranker


class Boom(Ranker):
    name = "boom"

    def rank(self, users, now, k):
        raise ValueError("boom: this ranker always fails")
'''

BOOM_RANKER = '\n[[rankers]]\nname = "boom_ranker:Boom"\nlabel = "boom"\n'


def parquet_files(out: Path) -> list[Path]:
    """Every Parquet file of a results folder, relative to it: combined tables, runs/ and impressions/."""
    return sorted(p.relative_to(out) for p in out.rglob("*.parquet"))


def assert_identical(a: Path, b: Path) -> None:
    files = parquet_files(a)
    assert {f"{name}.parquet" for name in (*TABLES, "summary")} <= {str(f) for f in files}
    assert any(f.parts[0] == "runs" for f in files) and any(f.parts[0] == "impressions" for f in files)
    assert files == parquet_files(b)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "tiny.toml"
    path.write_text(TWO_REPLICATES)
    return path


@pytest.fixture(scope="module")
def serial_out(tiny_file: Path) -> Path:
    out = tiny_file.parent / "serial"
    assert main(["run", str(tiny_file), "--out", str(out), "--jobs", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def ray_address():  # type: ignore[no-untyped-def]
    """A local two-node Ray cluster (head and worker, one CPU each); yields its address."""
    ray = pytest.importorskip("ray", reason="--executor ray needs Ray: pip install 'feedsim[ray]'")
    from ray.cluster_utils import Cluster

    # Ray starts its workers at nice 15, so any other busy process on the machine (a batch, the
    # rest of a CI job) starves them and a run takes minutes; at 0 they get their share.
    with pytest.MonkeyPatch.context() as patch:  # the raylets read it when they start
        patch.setenv("RAY_worker_niceness", "0")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    assert [node["Resources"]["CPU"] for node in ray.nodes() if node["Alive"]] == [1.0, 1.0]
    ray.shutdown()
    yield cluster.address
    cluster.shutdown()


def test_process_pool_matches_one_process(tiny_file: Path, serial_out: Path) -> None:
    out = tiny_file.parent / "pool"
    assert main(["run", str(tiny_file), "--out", str(out), "--jobs", "2"]) == 0
    assert_identical(serial_out, out)


def test_ray_cluster_matches_one_process(tiny_file: Path, serial_out: Path, ray_address: str) -> None:
    import ray

    out = tiny_file.parent / "ray"
    assert main(["run", str(tiny_file), "--out", str(out), "--executor", "ray", "--ray-address", ray_address]) == 0
    assert_identical(serial_out, out)
    assert not ray.is_initialized()  # the runner disconnects what it connected


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_failing_run_is_reported_and_the_others_finish(
        executor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    (tmp_path / "boom_ranker.py").write_text(BOOM_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # Ray puts the driver's working directory on its workers' path
    (tmp_path / "boom.toml").write_text(TINY_TOML + BOOM_RANKER)
    args = ["run", "boom.toml", "--out", "out"]
    args += ["--executor", "ray", "--ray-address", request.getfixturevalue("ray_address")] if executor == "ray" \
        else ["--jobs", "2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "run boom-r0 failed" in err and "ranker boom (boom_ranker:Boom), replicate 0" in err
    assert "Traceback" in err and "ValueError: boom: this ranker always fails" in err
    assert "1 run(s) failed: boom-r0" in err
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == ["content-r0", "follower-r0"]


def test_missing_ray_is_a_clear_error(tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    exp = load(tiny_file)
    with pytest.raises(RunnerError, match=r"--executor ray needs Ray: pip install 'feedsim\[ray\]'"):
        Runner(exp, tmp_path, executor="ray", progress=lambda line: None).run(plan(points(exp)))


def test_progress_bar_on_a_terminal(tiny_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    exp = load(tiny_file)
    Runner(exp, tmp_path, jobs=1).run(plan(points(exp)))
    shown = sys.stderr.getvalue()  # type: ignore[attr-defined]
    assert "4/4 [" in shown and "run/s" in shown and "impressions/s" in shown  # done/total, elapsed<ETA
    assert "[1/4]" not in shown  # the bar replaces the per-run lines


SLOW_TOML = """\
seed = 5
replicates = 2
horizon_days = 0.5
warmup_hours = 0.5

[world]
users = 3000
posting_rate_mean = 0.5

[[rankers]]
name = "content"

[[rankers]]
name = "follower"
"""


@pytest.mark.parametrize("executor", ["serial", "process", "ray"])
def test_ctrl_c_stops_the_batch_and_the_same_command_resumes(executor: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """SIGINT to the driver alone (its workers never see it) while runs are in flight.

    The driver starts with SIGINT ignored, as a background job of a non-interactive shell does (CI,
    ``make experiments &``): Python then installs no handler of its own, so each executor must.  The
    Ray executor once relied on Python's and ran its batch to the end."""
    (tmp_path / "slow.toml").write_text(SLOW_TOML)
    command = [sys.executable, "-m", "sim", "run", "slow.toml", "--out", "out"]
    command += {"serial": ["--jobs", "1"], "process": ["--jobs", "2"]}.get(executor) or \
        ["--executor", "ray", "--ray-address", request.getfixturevalue("ray_address")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ours = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the driver through exec
    try:
        driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
    finally:
        signal.signal(signal.SIGINT, ours)
    runs = tmp_path / "out" / "runs"
    deadline = time.monotonic() + 180  # generous: a loaded machine starts Ray workers slowly
    while not (runs.exists() and any(not p.name.endswith(".tmp") for p in runs.iterdir())):
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    # The Ray driver waits up to 120 s for its in-flight runs to answer the stop file
    # (executors._stop_in_flight), then shuts Ray down: allow more than that, or a loaded machine
    # (a Ray run at 479 impressions/s beside a 2-process batch, measured) times the test out first.
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 130, err
    assert "interrupted:" in err and "run the same command again to resume" in err
    finished = {p.name: {f.name: f.read_bytes() for f in p.iterdir()} for p in runs.iterdir()}
    assert 1 <= len(finished) < 4 and not any(name.endswith(".tmp") for name in finished)
    assert all(len(files) == len(TABLES) + 2 for files in finished.values())  # + impressions, run.json

    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(finished)} of 4 runs already finished" in resumed.stderr
    for name, files in finished.items():
        assert {f.name: f.read_bytes() for f in (runs / name).iterdir()} == files
    assert len(pq.read_table(tmp_path / "out" / "runs.parquet")) == 4


def test_serial_ctrl_c_stops_the_run_at_its_next_tick(tiny_file: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in a serial batch sets a flag the run checks each tick (a KeyboardInterrupt raised
    inside numba's compiler is swallowed or crashes the process); the batch then stops."""
    import sim.batch.executors as executors

    real = executors.execute_safely
    stopped: list[str | None] = []

    def interrupted_at_its_third_tick(*job, stop):  # type: ignore[no-untyped-def]
        ticks: list[int] = []

        def asked() -> bool:
            ticks.append(1)
            if len(ticks) == 3:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the terminal sends it
            return stop()

        outcome = real(*job, stop=asked)
        stopped.append(outcome.error)
        return outcome

    monkeypatch.setattr(executors, "execute_safely", interrupted_at_its_third_tick)
    exp = load(tiny_file)
    jobs = [Runner(exp, tmp_path, jobs=1)._job(key) for key in plan(points(exp))]
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        list(executors.serial(jobs))
    assert len(stopped) == 1 and stopped[0] is not None and stopped[0].startswith("not finished: stopped at t =")
    assert stopped[0] != "not finished: stopped at t = -0.50 h"  # not at the first tick: at the third
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert signal.getsignal(signal.SIGINT) is before
