"""Never lose, mix or forge results: what feedsim may write, replace and resume, one batch per
folder, signals, workers that never outlive their driver, and a ranker that ends its process."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sim.__main__ import main
from sim.batch.folder import FORMAT, FolderError, FolderLock

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
seed = 3
replicates = 1
horizon_days = 0.04
warmup_hours = 0.25

[world]
users = 300
posting_rate_mean = 0.5

[[rankers]]
name = "follower"

[[rankers]]
name = "content"
"""

# Long enough that a signal lands while runs are in flight.
SLOW = TINY.replace("horizon_days = 0.04", "horizon_days = 0.3").replace("users = 300", "users = 3000") \
    .replace("replicates = 1", "replicates = 3")

EXITING = '''\
import os, sys
from sim.rankers.follower import FollowerRanker


class Exits(FollowerRanker):
    how = "os_exit"

    def rank(self, users, now, k):
        if self.how == "os_exit":
            os._exit(3)
        if self.how == "system_exit":
            sys.exit("the ranker gives up")
        raise KeyboardInterrupt


class SystemExits(Exits):
    how = "system_exit"


class Interrupts(Exits):
    how = "keyboard"
'''


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tables(out: Path) -> dict[str, bytes]:
    """The combined tables and every run's tables: what must equal a clean batch's, byte for byte."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


@pytest.fixture()
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY)
    return tmp_path / "tiny.toml"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean batch of TINY, to compare resumed and repaired folders with."""
    folder = tmp_path_factory.mktemp("clean")
    (folder / "tiny.toml").write_text(TINY)
    assert main(["run", str(folder / "tiny.toml"), "--out", str(folder / "out"), "--jobs", "1"]) == 0
    return folder / "out"


def run(tiny: Path, *extra: str) -> int:
    return main(["run", str(tiny), "--jobs", "1", *extra])


# --------------------------------------------------------------------------- what may be written


def test_force_never_replaces_a_folder_feedsim_did_not_write(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tiny.parent / "d"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "pwa"}')
    (app / "src" / "app.js").write_text("console.log(1)")
    before = snapshot(app)
    for force in ([], ["--force"]):
        assert run(tiny, "--out", "d", *force) == 2
        assert "d/manifest.json: not a feedsim manifest" in capsys.readouterr().err
        assert snapshot(app) == before


@pytest.mark.parametrize("content", [b"[1, 2]", b"\x89PNG\x00\xff", b"{not json"])
def test_a_manifest_that_is_not_feedsims_is_refused_and_kept(tiny: Path, content: bytes,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tiny.parent / "d").mkdir()
    (tiny.parent / "d" / "manifest.json").write_bytes(content)
    assert run(tiny, "--out", "d", "--force") == 2
    assert "not a feedsim manifest" in capsys.readouterr().err
    assert (tiny.parent / "d" / "manifest.json").read_bytes() == content


def test_never_the_current_directory_a_parent_or_a_repository(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(tiny.parent)
    for out in (".", "..", str(tiny.parent)):
        assert run(tiny, "--out", out, "--force") == 2
        assert "is the current directory or one of its parents" in capsys.readouterr().err
    (tiny.parent / "repo" / ".git").mkdir(parents=True)
    assert run(tiny, "--out", "repo", "--force") == 2
    assert "holds a .git" in capsys.readouterr().err
    assert {k: v for k, v in snapshot(tiny.parent).items() if not k.startswith("repo")} == before


def test_a_non_empty_unrelated_folder_is_refused(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tiny.parent / "d").mkdir()
    (tiny.parent / "d" / "report.md").write_text("my own report")
    (tiny.parent / "d" / "notes.txt").write_text("mine")
    assert run(tiny, "--out", "d") == 2
    assert "holds files feedsim did not write (notes.txt)" in capsys.readouterr().err
    assert (tiny.parent / "d" / "report.md").read_text() == "my own report"
    (tiny.parent / "d" / "notes.txt").unlink()  # a report.md alone, with no runs/, is a user's too
    assert run(tiny, "--out", "d") == 2
    assert "holds files feedsim did not write (report.md)" in capsys.readouterr().err
    assert (tiny.parent / "d" / "report.md").read_text() == "my own report"


def test_out_that_is_a_file_or_under_one(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tiny.parent / "f").write_text("x")
    assert run(tiny, "--out", "f") == 2
    assert "--out f: is a file, not a folder" in capsys.readouterr().err
    assert run(tiny, "--out", "f/sub") == 2
    assert "which is a file" in capsys.readouterr().err
    assert (tiny.parent / "f").read_text() == "x"


def test_a_folder_that_cannot_be_written_is_a_message(tiny: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)  # as a read-only folder answers (root ignores chmod)
    assert run(tiny, "--out", "ro/out") == 2
    assert "ro/out: cannot write here (Permission denied); choose another --out" in capsys.readouterr().err


def test_force_removes_only_what_feedsim_wrote(tiny: Path, clean: Path) -> None:
    assert run(tiny, "--out", "out") == 0
    (tiny.parent / "out" / "notes.txt").write_text("mine")
    (tiny.parent / "out" / "plots" / "mine.pdf").write_text("mine too")
    assert run(tiny, "--out", "out", "--set", "seed=4") == 2  # another configuration: refused
    assert run(tiny, "--out", "out", "--set", "seed=4", "--force") == 0
    out = tiny.parent / "out"
    assert (out / "notes.txt").read_text() == "mine" and (out / "plots" / "mine.pdf").read_text() == "mine too"
    assert json.loads((out / "manifest.json").read_text())["seed"] == 4
    assert json.loads((out / "manifest.json").read_text())["format"] == FORMAT


def test_names_every_file_in_an_existing_feedsim_folder_as_its_own(tiny: Path, clean: Path) -> None:
    assert run(tiny, "--out", "out") == 0
    assert run(tiny, "--out", "out") == 0  # resumes: nothing to do, nothing refused
    assert tables(tiny.parent / "out") == tables(clean)


# --------------------------------------------------------------------------- configurations never mix


def test_a_lost_manifest_cannot_let_another_configuration_through(tiny: Path, clean: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tiny, "--out", "out", "--set", "seed=4") == 0
    (tiny.parent / "out" / "manifest.json").unlink()
    capsys.readouterr()
    assert run(tiny, "--out", "out") == 0
    err = capsys.readouterr().err
    assert err.count("it was made by another configuration") == 2 and "resuming" not in err
    assert tables(tiny.parent / "out") == tables(clean)


def test_a_truncated_run_table_is_redone(tiny: Path, clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tiny, "--out", "out") == 0
    posts = tiny.parent / "out" / "runs" / "content-r0" / "posts.parquet"
    posts.write_bytes(posts.read_bytes()[:100])
    capsys.readouterr()
    assert run(tiny, "--out", "out") == 0
    err = capsys.readouterr().err
    assert "redoing run content-r0: posts.parquet does not match its recorded checksum" in err
    assert "resuming: 1 of 2" in err
    assert tables(tiny.parent / "out") == tables(clean)


def test_stale_temporary_folders_are_cleared(tiny: Path, clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny.parent / "out"
    (out / "runs" / "content-r0.tmp").mkdir(parents=True)
    (out / "runs" / "content-r0.tmp" / "posts.parquet").write_text("half")
    (out / ".posts.parquet.tmp").write_text("half")
    assert run(tiny, "--out", "out") == 0
    assert "removed 2 temporary file(s)" in capsys.readouterr().err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert tables(out) == tables(clean)


def test_a_full_disk_while_combining_leaves_no_half_table(tiny: Path, clean: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import sim.batch.combine as combine

    real = combine.write_parquet

    def full(table, path):  # type: ignore[no-untyped-def]
        if path.name.startswith("."):  # the combined tables: the runs themselves were written
            path.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(table, path)

    monkeypatch.setattr(combine, "write_parquet", full)
    assert run(tiny, "--out", "out", "--executor", "serial") == 2
    assert "no space left on the device; free some and run the same command again" in capsys.readouterr().err
    out = tiny.parent / "out"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setattr(combine, "write_parquet", real)
    assert run(tiny, "--out", "out") == 0
    assert "resuming: 2 of 2" in capsys.readouterr().err
    assert tables(out) == tables(clean)


# --------------------------------------------------------------------------- one batch per folder


def test_a_second_batch_on_a_locked_folder_refuses_naming_the_holder(tiny: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tiny.parent / "out").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from sim.batch.folder import FolderLock; "
                               "FolderLock(Path('out')).acquire('python -m sim run other.toml'); "
                               "print('held', flush=True); time.sleep(120)"],
                              cwd=tiny.parent, env=env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        assert run(tiny, "--out", "out") == 2
        assert time.monotonic() - started < 10  # at once, not after waiting
        err = capsys.readouterr().err
        assert f"in use by another feedsim batch (pid {holder.pid} on " in err
        assert "python -m sim run other.toml" in err
        assert not (tiny.parent / "out" / "runs").exists()
    finally:
        holder.kill()  # a holder that dies outright: its lock is taken over
        holder.wait()
    assert run(tiny, "--out", "out") == 0


def test_the_lock_is_the_drivers_alone(tmp_path: Path) -> None:
    """Neither a forked worker nor a second batch in the same process takes a held lock."""
    lock = FolderLock(tmp_path)
    lock.acquire("first")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            FolderLock(tmp_path).acquire("child")
            os._exit(0)
        except BaseException:
            os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
    with pytest.raises(FolderError, match="in use by another feedsim batch"):
        FolderLock(tmp_path).acquire("second")
    lock.release()
    FolderLock(tmp_path).acquire("third")


# --------------------------------------------------------------------------- signals and orphans


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_slow(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """A two-job batch of SLOW, once both workers are running; returns the driver and its workers."""
    (tmp_path / "slow.toml").write_text(SLOW)
    driver = subprocess.Popen([sys.executable, "-m", "sim", "run", "slow.toml", "--out", "out", "--jobs", "2"],
                              cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(workers := children(driver.pid)) < 2:
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.05)
    return driver, workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the driver's workers")
def test_sigterm_stops_the_batch_like_ctrl_c(tmp_path: Path) -> None:
    driver, workers = start_slow(tmp_path)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 143, err
    assert "terminated (SIGTERM):" in err and "run the same command again to resume" in err
    assert not any(alive(w) for w in workers)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the driver's workers")
def test_workers_never_outlive_a_killed_driver(tmp_path: Path) -> None:
    driver, workers = start_slow(tmp_path)
    driver.kill()
    driver.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived its driver"
        time.sleep(0.05)
    runs = tmp_path / "out" / "runs"
    written = sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    time.sleep(1.0)
    assert (sorted(p.name for p in runs.iterdir()) if runs.exists() else []) == written  # nothing after death
    resumed = run_cli("run", "slow.toml", "--out", "out", "--jobs", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert len(pq.read_table(tmp_path / "out" / "runs.parquet")) == 6


# --------------------------------------------------------------------------- a ranker that ends its process


@pytest.mark.parametrize(("cls", "jobs", "said"), [
    ("Exits", "1", "exited with code 3 before finishing (does the ranker call os._exit?)"),
    ("Exits", "2", "exited with code 3 before finishing (does the ranker call os._exit?)"),
    ("SystemExits", "1", "the ranker gives up"),
    ("Interrupts", "2", "KeyboardInterrupt"),
])
def test_a_ranker_that_ends_its_process_fails_its_run_alone(tmp_path: Path, cls: str, jobs: str, said: str) -> None:
    (tmp_path / "exiting.py").write_text(EXITING)
    (tmp_path / "x.toml").write_text(TINY + f'\n[[rankers]]\nname = "exiting:{cls}"\nlabel = "bad"\n')
    done = run_cli("run", "x.toml", "--out", "out", "--jobs", jobs, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"ranker bad (exiting:{cls}), replicate 0" in done.stderr and said in done.stderr
    assert "1 run(s) failed: bad-r0" in done.stderr
    assert "interrupted" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == ["content-r0", "follower-r0"]


def test_another_tools_runs_folder_or_temporary_file_is_not_feedsims(tiny: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A runs/ of TensorBoard's, or a cache.tmp of the user's, does not make a folder feedsim's."""
    (tiny.parent / "u" / "runs" / "exp1").mkdir(parents=True)
    (tiny.parent / "u" / "report.md").write_text("NOTES")
    assert run(tiny, "--out", "u") == 2
    assert "holds files feedsim did not write (runs/exp1)" in capsys.readouterr().err
    assert (tiny.parent / "u" / "report.md").read_text() == "NOTES"
    (tiny.parent / "t" / "cache.tmp").mkdir(parents=True)
    (tiny.parent / "t" / "cache.tmp" / "file").write_text("x")
    assert run(tiny, "--out", "t") == 2
    assert "holds files feedsim did not write (cache.tmp)" in capsys.readouterr().err
    assert (tiny.parent / "t" / "cache.tmp" / "file").read_text() == "x"


def test_fewer_replicates_leave_no_run_of_the_larger_plan_in_the_tables(tiny: Path) -> None:
    assert run(tiny, "--out", "out", "--replicates", "2") == 0
    assert run(tiny, "--out", "out", "--replicates", "1") == 0
    out = tiny.parent / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["runs"]) == sorted(manifest["finished"]) == ["content-r0", "follower-r0"]
    assert sorted(p.name for p in (out / "impressions").iterdir()) == ["run_id=content-r0", "run_id=follower-r0"]
    assert sorted(set(pq.read_table(out / "runs.parquet")["run_id"].to_pylist())) == ["content-r0", "follower-r0"]


LINGERING = '''\
import threading, time
from sim.rankers.follower import FollowerRanker


class Lingers(FollowerRanker):
    def start(self, state):
        threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon: it would outlive the run
        super().start(state)
'''


def test_a_run_whose_ranker_leaves_a_thread_running_does_not_hang_the_batch(tmp_path: Path) -> None:
    (tmp_path / "lingering.py").write_text(LINGERING)
    (tmp_path / "x.toml").write_text(TINY + '\n[[rankers]]\nname = "lingering:Lingers"\nlabel = "lingers"\n')
    done = run_cli("run", "x.toml", "--out", "out", "--jobs", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == ["content-r0", "follower-r0",
                                                                              "lingers-r0"]
