"""Bad configuration fails early, names the file and the key, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import experiment_table

from sim.__main__ import main
from sim.config import (
    ConfigError,
    apply_overrides,
    check_memory,
    estimate_peak_bytes,
    load,
    machine_memory_bytes,
    parse,
    parse_value,
    points,
    read_table,
)
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


def test_a_star_index_sets_the_key_in_every_table_of_the_list() -> None:
    table = {"world": {"accounts": [{"name": "a"}, {"name": "b", "followers": 9}]}, "events": [{"name": "e"}]}
    out = apply_overrides(table, {"world.accounts[*].bought_followers": 5, "events[*].bought_likes": 3}, "t.toml")
    assert [a["bought_followers"] for a in out["world"]["accounts"]] == [5, 5]
    assert out["world"]["accounts"][1]["followers"] == 9 and out["events"][0]["bought_likes"] == 3
    assert "bought_followers" not in table["world"]["accounts"][0]  # the table given is not changed
    with pytest.raises(ConfigError, match=r"t.toml: --set world.products\[\*\].stock: products\[\*\]: products "
                                          r"is not a non-empty list"):
        apply_overrides(table, {"world.products[*].stock": 1}, "t.toml")


def test_a_sweep_over_every_account_is_one_column(tmp_path: Path) -> None:
    from sim.batch.plan import sweep_columns

    path = tmp_path / "sweep.toml"
    path.write_text(GOOD_TOML + '\n[[world.accounts]]\nname = "a"\nfollowers = 5\ntopic = "#crafttok"\n'
                    '\n[sweep]\n"world.accounts[*].bought_followers" = [0, 50]\n')
    pts = points(load(path))
    assert [[a.bought_followers for a in p.exp.world.accounts] for p in pts] == [[0, 0], [50, 50]]
    assert sweep_columns(pts[1].params) == {"sweep_world_accounts_bought_followers": 50}


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


# ------------------------------------------------------------------ safe names (issue 19)


@pytest.mark.parametrize("label", ["../../tmp/escape", "x/b", "a b", "..", ".", "caf\u00e9", "x" * 101])
def test_unsafe_ranker_label_is_named(label: str) -> None:
    problem = only_problem(experiment_table({"rankers": [{"name": "content", "label": label}]}))
    assert problem.startswith("bad.toml: rankers[0].label: ") and "is not a safe name" in problem


def test_unsafe_label_message_gives_the_rule() -> None:
    problem = only_problem(experiment_table({"rankers": [{"name": "content", "label": "../../tmp/escape"}]}))
    assert problem == ("bad.toml: rankers[0].label: '../../tmp/escape' is not a safe name "
                       "(letters, digits, _ . - only)")


def test_labels_that_differ_only_in_case_collide() -> None:
    rankers = [{"name": "content", "label": "For-You"}, {"name": "follower", "label": "for-you"}]
    problem = only_problem(experiment_table({"rankers": rankers}))
    assert "rankers[1].label: duplicate ranker label 'for-you': rankers[0] has it" in problem
    assert "letter case" in problem


@pytest.mark.parametrize("name", ["..", "../up", "a/b", "x y", ""])
def test_unsafe_experiment_name_is_named(name: str, tmp_path: Path) -> None:
    if name:
        problem = only_problem(experiment_table({"name": name}))
        assert problem.startswith("bad.toml: name: ") and "is not a safe name" in problem
    else:  # no name: the file's stem, which must be safe too
        path = tmp_path / "my experiment.toml"
        path.write_text(GOOD_TOML)
        with pytest.raises(ConfigError) as info:
            load(path)
        assert info.value.problems == [f"{path}: name: the file name's stem 'my experiment' is not a safe name "
                                       "(letters, digits, _ . - only): set name, or rename the file"]
        path.write_text('name = "mine"\n' + GOOD_TOML)
        assert load(path).name == "mine"


def test_user_ranker_without_label_is_labelled_by_its_class() -> None:
    table = experiment_table({"rankers": [{"name": "sim.rankers.follower:FollowerRanker"}]})
    exp = parse(table, "t.toml")
    assert [s.label for s in exp.rankers] == ["FollowerRanker"]
    changed = apply_overrides(table, {"rankers.FollowerRanker.order": "engagement"}, "t.toml")
    assert parse(changed, "t.toml").rankers[0].params.order == "engagement"


def test_user_rankers_of_the_same_class_name_need_labels() -> None:
    rankers = [{"name": "sim.rankers.follower:FollowerRanker"}, {"name": "sim.rankers.follower:FollowerRanker"}]
    problem = only_problem(experiment_table({"rankers": rankers}))
    assert "rankers[1].label: duplicate ranker label 'FollowerRanker'" in problem and "set a distinct label" in problem


# ------------------------------------------------------------------ unreadable files


def test_non_utf8_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(GOOD_TOML.replace("seed = 3", 'description = "caf\u00e9"\nseed = 3').encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.problems == [f"{path}: not UTF-8 text (byte 0xe9 at line 1); save it as UTF-8"]
    assert main(["validate", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_list_shows_a_bad_file_as_invalid_and_lists_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "a_good.toml").write_text('description = "fine"\n' + GOOD_TOML)
    (folder / "b_latin.toml").write_bytes(b'name = "caf\xe9"\n')
    (folder / "c_nested.toml").write_text("a = " + "[" * 3000 + "]" * 3000)
    (folder / "d_good.toml").write_text('description = "also fine"\n' + GOOD_TOML)
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["a_good", "b_latin", "c_nested", "d_good"]
    assert lines[0].endswith("fine") and lines[3].endswith("also fine")
    assert "INVALID: experiments/b_latin.toml: not UTF-8" in lines[1]
    assert "INVALID: experiments/c_nested.toml: TOML nested too deeply" in lines[2]


def test_folder_instead_of_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert info.value.problems == [f"{tmp_path}: is a folder, not an experiment file"]


# ------------------------------------------------------------------ memory


def test_world_too_big_for_memory_is_refused_with_the_estimate(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.toml"
    path.write_text(GOOD_TOML.replace("users = 300", "users = 1000000000000"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: world.users: one run of 1,000,000,000,000 users x 0.02 days needs about" in err
    assert "PiB of memory; this machine has" in err
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--jobs", "1"]) == 2
    assert not out.exists()


def test_memory_check_against_a_given_memory() -> None:
    exp = parse(experiment_table({"world": {"users": 100_000}}), "m.toml")
    peak = estimate_peak_bytes(exp)
    assert check_memory(exp, memory=peak) == peak
    with pytest.raises(ConfigError) as info:
        check_memory(exp, memory=peak - 1)
    assert info.value.problems[0].startswith("m.toml: world.users: one run of 100,000 users x 0.25 days")


def test_memory_estimate_grows_with_users_days_follows_posts_and_bought_followers() -> None:
    base = parse(experiment_table(), "m.toml")
    for change in ({"world": {"users": 6000}}, {"horizon_days": 2.0}, {"world": {"follows_mean": 400.0}},
                   {"world": {"posting_rate_mean": 20.0}},
                   {"world": {"accounts": [{"name": "a", "followers": 1, "topic": "#crafttok",
                                            "bought_followers": 10_000_000}]}}):
        assert estimate_peak_bytes(parse(experiment_table(change), "m.toml")) > estimate_peak_bytes(base), change


@pytest.mark.parametrize(("file", "users", "horizon_days", "measured_mib"), [
    ("calibration.toml", 5000, 4.0, 353), ("trinidad.toml", 400_000, 5.0, 1500e6 / 2**20),
    ("trinidad.toml", 2_000_000, 5.0, 6200e6 / 2**20)])
def test_memory_estimate_is_just_above_the_measured_peaks(file: str, users: int, horizon_days: float,
                                                          measured_mib: float) -> None:
    # Peak RSS measured at these sizes (see MEMORY_* in sim/config/memory.py).
    exp = parse(read_table(REPO / "experiments" / file) | {"horizon_days": horizon_days}, file)
    exp = parse(apply_overrides(exp._table, {"world.users": users}, file), file)  # type: ignore[attr-defined]
    assert 1.0 < estimate_peak_bytes(exp) / (measured_mib * 2**20) < 1.25


def test_memory_of_every_sweep_point_is_checked() -> None:
    table = experiment_table({"sweep": {"world.users": [3000, 10**12]}})
    exp = parse(table, "s.toml")
    with pytest.raises(ConfigError) as info:
        check_memory(exp, memory=machine_memory_bytes())
    assert "1,000,000,000,000 users" in info.value.problems[0]


# ------------------------------------------------------------------ no tracebacks


@pytest.mark.parametrize(("change", "expected"), [
    ({"horizon_days": float("nan")}, "horizon_days: expected a finite number (got nan)"),
    ({"horizon_days": float("inf")}, "horizon_days: expected a finite number (got inf)"),
    ({"horizon_days": 10**400}, "horizon_days: expected a finite number (got an integer of about 401 digits)"),
    ({"seed": 2**64}, "seed: 18446744073709551616 is too large"),
    ({"world": {"accounts": [1]}}, "world.accounts[0]: expected a table (got 1)"),
    ({"world": {"topics": ["#a", 3]}}, "world.topics[1]: expected a string (got 3)"),
    ({"world": [1]}, "world: expected a table (got [1])"),
    ({"rankers": {"name": "content"}}, "rankers: expected a list of table"),
    ({"rankers": [{"name": "content", "params": 5}]}, "rankers[0].params: expected a table (got 5)"),
    ({"rankers": [{"name": ":"}]}, "rankers[0].name: cannot load ranker ':': ValueError"),
    ({"rankers": [{"name": ".rel:X"}]}, "rankers[0].name: cannot load ranker '.rel:X': TypeError"),
    ({"rankers": [{"name": "content", "label": "a\nb"}]}, "rankers[0].label: control characters"),
    ({"sweep": 5}, "sweep: expected a table"),
    ({"quick": 5}, "quick: expected a table"),
    ({"quick": {"world.userz": 3}}, "quick: world.userz: unknown key"),
    ({"sweep": {f"world.follows_mean{i}": list(range(10)) for i in range(5)}},
     "sweep: 100,000 points (the product of the grid lists) exceed 10,000"),
])
def test_bad_values_are_problems_not_tracebacks(change: dict, expected: str) -> None:
    problems = problems_of(experiment_table(change))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("text", "expected"), [
    ("seed = " + "9" * 5000, "TOML value error"),
    ("a = " + "[" * 5000 + "]" * 5000, "TOML nested too deeply"),
])
def test_toml_that_tomllib_cannot_hold_is_reported(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.problems[0].startswith(f"{path}: {expected}")


def test_set_values_are_parsed_safely(tmp_path: Path) -> None:
    assert parse_value("1\nseed = 2") == "1\nseed = 2"
    assert parse_value("9" * 5000) == "9" * 5000
    path = tmp_path / "good.toml"
    path.write_text(GOOD_TOML.replace('[[rankers]]\nname = "follower"', '[rankers]\nname = "follower"'))
    with pytest.raises(ConfigError) as info:
        load(path, {"rankers.follower.order": "engagement"})
    assert info.value.problems == [f"{path}: --set rankers.follower.order: no ranker labelled 'follower'"]
    path.write_text(GOOD_TOML + "params = 5\n")
    with pytest.raises(ConfigError) as info:
        load(path, {"rankers.follower.order": "engagement"})
    assert info.value.problems == [f"{path}: --set rankers.follower.order: rankers 'follower': params is not a table"]
