"""The Python API (sim.run, sim.load, Results) and how rankers are found: 'module:Class' from
PYTHONPATH or the working directory, short names through the feedsim.rankers entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import TINY_TOML

import sim
from sim.__main__ import main
from sim.api import Results, ResultsError, RunsFailed, to_experiment
from sim.config import ConfigError, Experiment, RankerSpec, WorldConfig, parse
from sim.rankers import RANKERS, resolve_ranker
from sim.rankers.base import ENTRY_POINT_GROUP

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "my_ranker"


TINY: dict[str, Any] = tomllib.loads(TINY_TOML)

BOOM_MODULE = '''\
from sim.rankers.base import Ranker


class Boom(Ranker):
    def rank(self, users, now, k):
        raise ValueError("boom: this ranker always fails")
'''


def with_rankers(*rankers: dict[str, Any]) -> dict[str, Any]:
    return {**TINY, "rankers": list(rankers)}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return sim.run(TINY, out=tmp_path_factory.mktemp("api") / "tiny", jobs=1, report=False)


def test_run_writes_the_folder_the_command_line_writes(results: Results, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    monkeypatch.setattr("sim.__main__._report", lambda out: None)  # the figures are not compared: not drawn
    assert main(["run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "cli"), "--jobs", "1"]) == 0
    files = sorted(p.relative_to(results.path) for p in results.path.rglob("*.parquet"))
    assert files == sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*.parquet"))
    assert len(files) == 6 + 2 + 2 + 2 * 7  # combined tables, summary and claims, impressions of 2 runs, 2 runs
    for f in files:
        assert (results.path / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f


def test_results_tables_manifest_and_repr(results: Results) -> None:
    assert results.tables == ["runs", "focal", "posts", "promotions", "timeseries", "measures", "summary",
                              "claims", "impressions"]
    runs = results.table("runs")
    assert runs.column("run_id").to_pylist() == ["follower-r0", "content-r0"]
    assert runs.column("users").to_pylist() == [400, 400]
    impressions = results.table("impressions")
    per_run = [pq.read_metadata(results.path / "runs" / r / "impressions.parquet").num_rows
               for r in ("content-r0", "follower-r0")]
    assert impressions.num_rows == sum(per_run) > 0
    assert sorted(set(impressions.column("run_id").to_pylist())) == ["content-r0", "follower-r0"]
    assert set(results.table("summary").column("ranker").to_pylist()) == {"follower", "content"}
    assert results.manifest["experiment"] == "tiny" and results.manifest["config"]["world"]["users"] == 400
    assert results.rankers == ["follower", "content"] and results.run_ids == ["content-r0", "follower-r0"]
    assert repr(results) == (f"<Results 'tiny': 2 runs of follower, content (400 users, 0.05 days, 1 replicate) "
                             f"at {results.path}>")
    frame = results.to_pandas("runs")
    assert list(frame["run_id"]) == ["follower-r0", "content-r0"] and frame.shape == (2, runs.num_columns)


def test_load_opens_a_folder_and_results_name(results: Results, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sim.load(results.path).manifest == results.manifest
    monkeypatch.chdir(results.path.parent.parent)
    (results.path.parent.parent / "results").mkdir(exist_ok=True)
    os.symlink(results.path, results.path.parent.parent / "results" / "linked")
    assert sim.load("linked").table("runs").num_rows == 2  # results/<name>, as `sim report` takes it


def test_not_a_results_folder(tmp_path: Path, results: Results, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ResultsError, match=f"{tmp_path}: not a results folder \\(no manifest.json"):
        sim.load(tmp_path)
    with pytest.raises(ResultsError, match=f"{tmp_path / 'nope'}: no such folder"):
        sim.load(tmp_path / "nope")
    with pytest.raises(ResultsError, match=r"unknown table 'run' \(known: runs, focal, posts, promotions, "
                                           r"timeseries, measures, summary, claims, impressions\)"):
        results.table("run")
    for content in (b"[1, 2]", b"\xe9\x00", b'{"name": "pwa"}'):  # another tool's manifest, or none at all
        (tmp_path / "manifest.json").write_bytes(content)
        with pytest.raises(ResultsError, match="not a feedsim manifest"):
            sim.load(tmp_path)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match=r"Results.to_pandas needs pandas: pip install 'feedsim\[analysis\]'"):
        results.to_pandas("runs")


def test_experiment_input_resumes_the_dict_input_folder(results: Results) -> None:
    """The same configuration as an Experiment is the same folder: nothing is rerun."""
    before = results.manifest["runs"]
    again = sim.run(parse(TINY, "tiny.toml"), out=results.path, jobs=1, report=False)
    assert again.manifest["runs"] == before  # wall_s of each run unchanged: not rerun


def test_overrides_and_quick_on_an_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = parse({**with_rankers({"name": "random"}), "quick": {"world.users": 300}}, "tiny.toml")
    out = sim.run(exp, quick=True, overrides={"horizon_days": 0.03, "rankers.random.recent_hours": 2.0},
                  jobs=1, report=False)
    assert out.path == Path("results/tiny-quick")  # the command line's default folder for --quick
    config = out.manifest["config"]
    assert (config["world"]["users"], config["horizon_days"]) == (300, 0.03)
    assert config["rankers"][0]["params"]["recent_hours"] == 2.0
    assert out.table("runs").column("users").to_pylist() == [300]
    assert out.manifest["quick"] is True
    assert out.manifest["command"] == ("sim.run(<Experiment>, out='results/tiny-quick', quick=True, overrides="
                                       "{'horizon_days': 0.03, 'rankers.random.recent_hours': 2.0})")


def test_a_hand_built_experiment_is_validated() -> None:
    exp = to_experiment(Experiment(name="hand", world=WorldConfig(users=300), rankers=(RankerSpec(name="random"),)))
    assert (exp.name, exp.world.users, exp.rankers[0].label) == ("hand", 300, "random")
    assert exp.rankers[0].params == RANKERS["random"].Params()  # built from the params table, as from a file
    with pytest.raises(ConfigError, match=r"hand: world.users: must be >= 2 \(got 1\)"):
        to_experiment(Experiment(name="hand", world=WorldConfig(users=1), rankers=(RankerSpec(name="random"),)))


def test_bad_input_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"<dict>: world.users: must be >= 2 \(got 1\)"):
        sim.run(TINY, out=tmp_path, overrides={"world.users": 1})
    with pytest.raises(TypeError, match="expected a path, a dict or an Experiment"):
        sim.run(42, out=tmp_path)  # type: ignore[arg-type]


def test_failed_runs_raise_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "boom_api.py").write_text(BOOM_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    exp = with_rankers({"name": "random"}, {"name": "boom_api:Boom", "label": "boom"})
    with pytest.raises(RunsFailed, match=r"1 run\(s\) failed in .*out: boom-r0 \(first: ValueError: boom: this "
                                         r"ranker always fails\)") as caught:
        sim.run(exp, out=tmp_path / "out", jobs=1, report=False)
    assert list(caught.value.failures) == ["boom-r0"]
    assert "ranker boom (boom_api:Boom), replicate 0" in caught.value.failures["boom-r0"]
    assert caught.value.results.table("runs").column("run_id").to_pylist() == ["random-r0"]


def test_editing_your_own_ranker_makes_a_different_configuration(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A results folder of a module:Class ranker is not resumed with its edited code: the ranker's
    source is part of the configuration hash (built-in rankers' hashes do not change)."""
    from sim.batch.plan import config_hash
    from sim.config import parse

    (tmp_path / "hash_ranker_mod.py").write_text(BOOM_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    exp = parse(with_rankers({"name": "random"}, {"name": "hash_ranker_mod:Boom"}), "hash")
    builtin = parse(with_rankers({"name": "random"}), "hash")
    before, builtin_before = config_hash(exp), config_hash(builtin)
    (tmp_path / "hash_ranker_mod.py").write_text(BOOM_MODULE + "\n# edited\n")
    assert config_hash(exp) != before
    assert config_hash(builtin) == builtin_before


# --------------------------------------------------------------------------- finding rankers


def install_fake_dist(site: Path, entry_points: dict[str, str]) -> None:
    """A dist-info on ``site`` declaring ``entry_points`` in the feedsim.rankers group, as pip writes it."""
    info = site / "fake_rankers-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-rankers\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


def test_example_package_entry_point_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's own declaration, installed as pip would: `liked` finds its class."""
    declared = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]
    install_fake_dist(tmp_path, {**declared[ENTRY_POINT_GROUP], "content": "my_ranker:LikedInTopic",
                                 "broken": "no_such_module_xyz:Ranker"})
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(tmp_path))
    from my_ranker import LikedInTopic

    assert resolve_ranker("liked") is LikedInTopic
    assert resolve_ranker("content") is RANKERS["content"]  # a registered name wins over an entry point
    exp = parse(with_rankers({"name": "liked", "params": {"oversample": 3}}), "x.toml")
    assert exp.rankers[0].params == LikedInTopic.Params(oversample=3)
    with pytest.raises(KeyError, match=r"unknown ranker 'likd' \(built in: chronological, content, follower, "
                                       r"hybrid, popularity, random; installed \(feedsim.rankers entry points\): "
                                       r"broken, content, liked; or give 'module:Class'"):
        resolve_ranker("likd")
    with pytest.raises(ImportError, match=r"ranker 'broken': cannot load its entry point "
                                          r"'no_such_module_xyz:Ranker': ModuleNotFoundError"):
        resolve_ranker("broken")


def test_module_class_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A script started elsewhere has not the working directory on its path: it is tried too."""
    (tmp_path / "cwd_ranker_mod.py").write_text(BOOM_MODULE)
    here = os.path.abspath(os.getcwd())
    monkeypatch.setattr(sys, "path", [p for p in sys.path if os.path.abspath(p or ".") not in (here, str(tmp_path))])
    with pytest.raises(ImportError, match=r"cannot import ranker module 'cwd_ranker_mod': No module named "
                                          f"'cwd_ranker_mod' \\(searched PYTHONPATH, the installed packages and "
                                          f"the working directory {here}\\)"):
        resolve_ranker("cwd_ranker_mod:Boom")
    monkeypatch.chdir(tmp_path)
    try:
        assert resolve_ranker("cwd_ranker_mod:Boom").__module__ == "cwd_ranker_mod"
    finally:
        sys.modules.pop("cwd_ranker_mod", None)
    assert sys.path[-1] == str(tmp_path)  # kept: what the module imports later is found too
    with pytest.raises(AttributeError, match="'cwd_ranker_mod:Bom' is not a Ranker subclass"):
        resolve_ranker("cwd_ranker_mod:Bom")


def test_module_class_on_pythonpath_from_another_directory(tmp_path: Path) -> None:
    """The example ranker, on PYTHONPATH only, found by a script started from an unrelated
    directory, and by the worker processes that run it."""
    (tmp_path / "exp.toml").write_text(TINY_TOML.replace('name = "content"', 'name = "my_ranker:LikedInTopic"\n'
                                                                              'label = "mine"'))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "go.py").write_text("import sim\n\nsim.run('exp.toml', out='out', jobs=2, report=False)\n")
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE)}
    done = subprocess.run([sys.executable, "scripts/go.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    runs = pq.read_table(tmp_path / "out" / "runs.parquet")
    assert runs.column("run_id").to_pylist() == ["follower-r0", "mine-r0"]
    assert runs.column("impressions").to_pylist()[1] > 0
