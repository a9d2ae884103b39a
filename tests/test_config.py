"""Bad configuration fails early, names the file and the key, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import experiment_table

from sim.__main__ import main
from sim.config import ConfigError, load, parse
from sim.rankers import RANKERS

GOOD_TOML = """\
seed = 3
replicates = 1
horizon_days = 0.02
warmup_hours = 0.5

[world]
users = 300
posting_rate_mean = 0.5

[[world.accounts]]
name = "shop"
followers = 10
topic = "#crafttok"

[[events]]
name = "launch"
account = "shop"
at_hours = 0.1

[[rankers]]
name = "follower"
"""

REPO = Path(__file__).resolve().parents[1]


def problems_of(table: dict, source: str = "bad.toml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(table, source=source)
    problems = info.value.problems
    assert problems, "a ConfigError must carry at least one problem"
    assert all(p.startswith(f"{source}: ") for p in problems), problems
    return problems


def only_problem(table: dict) -> str:
    problems = problems_of(table)
    assert len(problems) == 1, problems
    return problems[0]


def test_tiny_experiment_is_valid() -> None:
    exp = parse(experiment_table(), source="tiny.toml")
    assert exp.name == "tiny"
    assert [s.label for s in exp.rankers] == ["content", "follower"]


def test_unknown_top_level_key_is_named() -> None:
    problem = only_problem(experiment_table({"sede": 4}))
    assert "sede: unknown key" in problem


def test_unknown_nested_key_is_named_with_its_path() -> None:
    problem = only_problem(experiment_table({"world": {"userz": 10}}))
    assert "world.userz: unknown key" in problem


def test_unknown_key_in_array_of_tables_is_named_with_its_index() -> None:
    table = experiment_table({"world": {"accounts": [{"name": "a", "followers": 3, "topic": "#crafttok",
                                                       "folowers": 4}]}})
    problem = only_problem(table)
    assert "world.accounts[0].folowers: unknown key" in problem


def test_wrong_type_is_named() -> None:
    problem = only_problem(experiment_table({"world": {"users": "many"}}))
    assert "world.users" in problem and "integer" in problem and "'many'" in problem


def test_negative_users_names_the_allowed_range() -> None:
    problem = only_problem(experiment_table({"world": {"users": -5}}))
    assert "world.users" in problem and ">= 2" in problem and "-5" in problem


def test_planted_account_with_more_followers_than_users_fails() -> None:
    table = experiment_table({"world": {"users": 50, "accounts": [{"name": "star", "followers": 500,
                                                                    "topic": "#crafttok"}]}})
    problem = only_problem(table)
    assert "world.accounts[0].followers" in problem and "500" in problem


def test_appeal_belongs_to_the_post_that_releases_the_sound() -> None:
    account = {"name": "artist", "followers": 10, "topic": "#crafttok"}
    events = [{"name": "song", "account": "artist", "at_hours": 1.0, "sound": "tune", "appeal_quantile": 0.9},
              {"name": "again", "account": "artist", "at_hours": 2.0, "sound": "tune", "appeal_quantile": 0.5}]
    problem = only_problem(experiment_table({"world": {"accounts": [account]}, "events": events}))
    assert "events[1].appeal_quantile" in problem and "reuses the sound of events[0]" in problem
    events = [{"name": "silent", "account": "artist", "appeal_quantile": 0.9}]
    problem = only_problem(experiment_table({"world": {"accounts": [account]}, "events": events}))
    assert "events[0].appeal_quantile" in problem and "has no sound" in problem
    for bad in (0.0, -0.5):
        events = [{"name": "song", "account": "artist", "sound": "tune", "appeal_quantile": bad}]
        problem = only_problem(experiment_table({"world": {"accounts": [account]}, "events": events}))
        assert "events[0].appeal_quantile" in problem and "expected -1" in problem


def test_world_formats_must_be_unique() -> None:
    problem = only_problem(experiment_table({"world": {"formats": ["story", "story"]}}))
    assert "world.formats" in problem and "unique" in problem


def test_unknown_ranker_lists_known_rankers() -> None:
    problem = only_problem(experiment_table({"rankers": [{"name": "tiktok"}]}))
    assert "rankers[0].name" in problem and "'tiktok'" in problem
    for name in RANKERS:
        assert name in problem


def test_ranker_import_failure_is_reported() -> None:
    problem = only_problem(experiment_table({"rankers": [{"name": "nosuchmod:X"}]}))
    assert "rankers[0].name" in problem and "nosuchmod" in problem


def test_ranker_that_is_not_a_ranker_class_is_reported() -> None:
    problem = only_problem(experiment_table({"rankers": [{"name": "sim.config:Experiment"}]}))
    assert "rankers[0].name" in problem and "not a Ranker" in problem


def test_unknown_ranker_param_is_named() -> None:
    table = experiment_table({"rankers": [{"name": "content", "params": {"explor_share": 0.2}}]})
    problem = only_problem(table)
    assert "rankers[0].params.explor_share: unknown key" in problem


def test_out_of_range_ranker_param_is_named() -> None:
    table = experiment_table({"rankers": [{"name": "follower", "params": {"order": "random"}}]})
    problem = only_problem(table)
    assert "rankers[0].params.order" in problem and "chronological" in problem


def test_several_problems_are_reported_at_once() -> None:
    table = experiment_table({"sede": 4, "replicates": 0, "world": {"users": "many", "userz": 1}})
    problems = problems_of(table)
    joined = "\n".join(problems)
    for key in ("sede", "replicates", "world.users", "world.userz"):
        assert f"{key}:" in joined
    assert len(problems) == 4


def test_problems_in_different_stages_are_reported_together() -> None:
    # The module promises to collect *every* problem: a typo in [world] must not hide a bad ranker.
    table = experiment_table({"world": {"userz": 1}, "rankers": [{"name": "tiktok"}]})
    joined = "\n".join(problems_of(table))
    assert "world.userz" in joined
    assert "rankers[0].name" in joined


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("seed = 3\n[world]\nusers = = 5\n")
    with pytest.raises(ConfigError) as info:
        load(bad)
    message = str(info.value)
    assert "broken.toml" in message
    assert "line 3" in message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nothing.toml")
    assert "nothing.toml" in str(info.value) and "not found" in str(info.value)


def test_load_prefixes_problems_with_the_file_path(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(GOOD_TOML.replace("users = 300", "userz = 300"))
    with pytest.raises(ConfigError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: world.userz: unknown key")


def test_override_of_unknown_ranker_label_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD_TOML)
    with pytest.raises(ConfigError) as info:
        load(path, {"rankers.content.explore_share": 0.2})
    assert "content" in str(info.value)


def test_cli_run_of_bad_file_fails_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD_TOML.replace("users = 300", "users = -1"))
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out), "--jobs", "1"]) != 0
    assert not out.exists()


def test_cli_run_of_syntax_error_fails_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[world\nusers = 3\n")
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out), "--jobs", "1"]) != 0
    assert not out.exists()


def test_cli_validate_accepts_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD_TOML)
    assert main(["validate", str(good)]) == 0
    assert "ok" in capsys.readouterr().out


def test_cli_validate_rejects_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD_TOML.replace("[world]", "[world]\nuserz = 3"))
    assert main(["validate", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "bad.toml" in err and "world.userz" in err


def test_shipped_experiments_validate() -> None:
    for path in sorted((REPO / "experiments").glob("*.toml")):
        assert main(["validate", str(path)]) == 0, path


def test_cli_run_of_good_file_writes_results(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD_TOML)
    out = tmp_path / "out"
    assert main(["run", str(good), "--out", str(out), "--jobs", "1"]) == 0
    for name in ("runs", "posts", "focal", "timeseries", "promotions"):
        assert (out / f"{name}.parquet").exists()
    assert (out / "manifest.json").exists()
