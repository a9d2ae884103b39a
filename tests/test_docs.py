"""The docs: code blocks run, generated pages are up to date, the generator reads results folders right."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim import docs
from sim.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
#: `python -m sim` commands cheap enough to run from a doc page in the tests.
CHEAP = re.compile(r"^python -m sim( (list|validate \S+|schema( --results)?|\S+ --help)| --help)$")


def blocks(page: Path) -> list[tuple[str, str, str]]:
    """(language, info words after it, code) for every fenced block of ``page``."""
    out = []
    for info, code in FENCE.findall(page.read_text()):
        lang, _, rest = info.strip().partition(" ")
        out.append((lang, rest, code))
    return out


CASES = [(page, i, lang, rest, code) for page in PAGES for i, (lang, rest, code) in enumerate(blocks(page))
         if "no-run" not in rest.split()]


def commands(code: str) -> list[str]:
    """The commands of a bash block: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line.split(" #")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize(("page", "index", "lang", "rest", "code"), CASES,
                         ids=[f"{c[0].relative_to(ROOT)}#{c[1]}" for c in CASES])
def test_code_block_runs(page: Path, index: int, lang: str, rest: str, code: str, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    where = f"{page.relative_to(ROOT)}, code block {index}"
    if lang == "python":
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(ROOT))
        # A module of its own in sys.modules, as a script's would be: dataclasses and pickling look there.
        module = types.ModuleType("docs_block")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(code, where, "exec"), module.__dict__)
    elif lang in ("bash", "sh", "shell", "console"):
        monkeypatch.chdir(ROOT)
        for command in commands(code):
            assert CHEAP.match(command), (
                f"{where}: `{command}` is not a cheap `python -m sim` command (--help, list, validate, schema); "
                f"mark the block ```{lang} no-run if it must not run in the tests")
            try:
                status = main(command.split()[3:])
            except SystemExit as exc:  # argparse's --help
                status = int(exc.code or 0)
            assert status == 0, f"{where}: `{command}` exited {status}: {capsys.readouterr().err}"
            assert capsys.readouterr().out.strip(), f"{where}: `{command}` printed nothing"
    elif lang == "toml":
        tomllib.loads(code)


def test_the_adding_a_ranker_example_runs_in_these_tests() -> None:
    """docs/rankers.md's worked example (a ranker, registered and put through the contract suite)
    is one of the blocks test_code_block_runs executes, not one marked no-run."""
    examples = [code for page, _, lang, _, code in CASES
                if page == ROOT / "docs" / "rankers.md" and lang == "python" and "check_ranker(" in code]
    assert len(examples) == 1
    assert "class Newest(Ranker)" in examples[0] and "assert all(r.passed for r in results)" in examples[0]


def test_every_page_has_a_tested_block_convention_documented() -> None:
    text = (ROOT / "docs" / "README.md").read_text()
    assert "no-run" in text and "tests/test_docs.py" in text


def test_results_schema_page_is_up_to_date() -> None:
    page = ROOT / "docs" / "results-schema.md"
    assert page.read_text() == docs.schema_markdown(), "docs/results-schema.md is stale: run `make docs`"
    for table, columns in docs.SCHEMAS.items():
        assert f"## {table}\n" in page.read_text()
        for name, *_ in columns:
            assert f"| `{name}` |" in page.read_text()


def test_readme_is_short_and_links_exist() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 10_000
    assert "DESIGN.md" not in text
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_generated_blocks_render_without_results(tmp_path: Path) -> None:
    rendered = docs.render(ROOT, tmp_path / "none")
    assert "not run yet" in rendered[ROOT / "README.md"]
    for name, _ in docs.SEED_CASES:
        assert f"<!-- generated:results:{name} -->" in (ROOT / "docs" / "experiments.md").read_text()


def test_bench_block_tables_what_make_bench_wrote(tmp_path: Path) -> None:
    assert "make bench" in docs.bench_block(tmp_path / "bench")  # nothing measured: says how to measure
    bench = tmp_path / "bench"
    bench.mkdir()
    row = {"users": 50_000, "days": 1.0, "impressions_per_s": 440_020, "follower_impressions_per_s": 267_485,
           "floor_impressions_per_s": 1_333_077, "ratio": 0.33, "peak_rss_mb": 375.2, "setup_s": 0.51,
           "cores": 2, "git_revision": "6b503fa0123456789"}
    (bench / "bench.json").write_text(json.dumps([row]))
    (bench / "jobs_scaling.json").write_text(json.dumps([
        {"jobs": 1, "runs": 4, "users": 100_000, "days": 0.5, "wall_s": 57.5, "speedup": 1.0},
        {"jobs": 2, "runs": 4, "users": 100_000, "days": 0.5, "wall_s": 30.6, "speedup": 1.88}]))
    text = docs.bench_block(bench)
    assert "| 50,000 | 440,020 | 267,485 | 1,333,077 | 0.330 | 375 | 0.5 |" in text
    assert "revision `6b503fa012` on 2 cores" in text
    assert "57.5 s on 1 process and 30.6 s on 2 (speedup 1.88x)" in text
    assert "revision `unknown`" in text  # the jobs rows name no revision
    (bench / "bench.json").write_text("{")
    with pytest.raises(docs.DocsError, match="bench"):
        docs.bench_block(bench)


TINY = """description = \"\"\"A tiny world for the docs generator.
Not a seed case.\"\"\"
seed = 5
replicates = 2
horizon_days = 0.05
warmup_hours = 1.0
baseline = "follower"
highlights = ["focal_views", "account.seller.views"]

[world]
users = 2000

[[world.accounts]]
name = "seller"
followers = 20
topic = "#beautytok"

[[events]]
name = "clip"
account = "seller"
at_hours = 0.0
quality_quantile = 0.99

[[rankers]]
name = "content"

[[rankers]]
name = "follower"
"""


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/tiny/ from a real run, and results/tiny-quick/ (a copy) and results/probe/ (not default)."""
    root = tmp_path_factory.mktemp("docs")
    (root / "tiny.toml").write_text(TINY)
    subprocess.run([sys.executable, "-m", "sim", "run", "tiny.toml", "--jobs", "1", "--out", "results/tiny"],
                   cwd=root, check=True, capture_output=True)
    shutil.copytree(root / "results" / "tiny", root / "results" / "tiny-quick")
    manifest = root / "results" / "tiny-quick" / "manifest.json"  # as `--quick` records it
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "quick": True}))
    shutil.copytree(root / "results" / "tiny", root / "results" / "probe")  # --out elsewhere: left out
    (root / "results" / "empty").mkdir()
    return root


def test_generator_tables_a_results_folder(tiny_results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny_results
    (root / "docs").mkdir(exist_ok=True)
    (root / "README.md").write_text("# x\n<!-- generated:seed-cases -->\nold\n<!-- /generated:seed-cases -->\nend\n")
    (root / "docs" / "experiments.md").write_text("<!-- generated:results:tiny -->\n<!-- /generated:results:tiny -->\n")
    manifest = json.loads((root / "results" / "tiny" / "manifest.json").read_text())
    summary = pq.read_table(root / "results" / "tiny" / "summary.parquet").to_pydict()

    def median(ranker: str, metric: str) -> float:
        return next(m for r, n, m in zip(summary["ranker"], summary["metric"], summary["median"], strict=True)
                    if r == ranker and n == metric)

    monkeypatch.setattr(docs, "SEED_CASES", (("tiny", "a tiny case"), ("absent", "never run")))
    monkeypatch.chdir(root)
    assert main(["docs", "--check"]) == 1  # README, experiments.md and both pages out of date
    assert main(["docs"]) == 0
    assert main(["docs", "--check"]) == 0  # the same folders give the same text
    readme = (root / "README.md").read_text()
    # the revision, and "+ uncommitted changes" when these tests run from an edited checkout
    code = docs.read_folder(root / "results" / "tiny").code
    assert code.startswith(f"`{manifest['git_revision'][:10]}`")
    content, follower = median("content", "focal_views"), median("follower", "focal_views")
    row = (f"| a tiny case | `tiny` | `focal_views` | content {docs.number('focal_views', content)} · follower "
           f"{docs.number('focal_views', follower)} | none declared | full: 2,000 users, 0.05 d, 2 rep., "
           f"{code} |")
    assert row in readme.splitlines()
    assert "| never run | `absent` | not run yet | — | — |" in readme
    assert "old" not in readme and readme.endswith("<!-- /generated:seed-cases -->\nend\n")
    results = (root / "docs" / "results.md").read_text()
    assert "`results/tiny/` (full): 2,000 users, 0.05 days, 2 replicates per ranker, 4 runs, " in results
    assert " min of run time in all, revision `" in results
    assert "`results/tiny-quick/` (quick)" in results and 'ARGS="--quick"' in results
    assert "probe" not in results and "empty" not in results
    # per folder: 2 rankers x 2 highlights without an interval, and content's 2 paired differences
    assert results.count("| n = 2: no interval |") == 2 * (2 * 2)
    assert results.count("(n = 2: no interval)") == 2 * 2
    assert "| `account.seller.views` | content |" in results
    assert results.count("Claims (`claims.parquet`): none declared.") == 2  # not a table of no rows
    # The band table: the content ranker's runs of the full folder against the calibration's bands.
    runs = pq.read_table(root / "results" / "tiny" / "runs.parquet").to_pydict()
    content = [i for i, r in enumerate(runs["ranker"]) if r == "content"]
    watch = sorted(runs["mean_watch_fraction"][i] for i in content)
    band_row = next(line for line in results.splitlines() if line.startswith("| `tiny` |"))
    assert band_row.startswith(f"| `tiny` | 2,000 users, 0.05 d | {len(content)} | ")
    assert docs._band_cell(watch, "share", 0.40, 0.50) in band_row
    assert band_row.endswith(f"| full: {code} |")
    shape = results[results.index(f"## {docs.SHAPE_HEADING}"):]
    assert next(line for line in shape.splitlines() if line.startswith("| `tiny` |")).endswith(f"| full: {code} |")
    assert "| `absent` | not run yet |" in results and "| `calibration` | not run yet |" in results
    experiments = (root / "docs" / "experiments.md").read_text()
    assert experiments.count("`results/tiny") == 2
    assert (root / "docs" / "results-schema.md").read_text() == docs.schema_markdown()


def test_keep_absent_keeps_what_the_docs_said_of_folders_not_here(tiny_results: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Docs written with both of tiny's folders present, then regenerated with only the quick one.
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "README.md").write_text("<!-- generated:seed-cases -->\n<!-- /generated:seed-cases -->\n")
    (root / "docs" / "experiments.md").write_text("<!-- generated:results:tiny -->\n<!-- /generated:results:tiny -->\n")
    monkeypatch.setattr(docs, "SEED_CASES", (("tiny", "a tiny case"), ("absent", "never run")))
    docs.write(root, tiny_results / "results")
    pages = (root / "README.md", root / "docs" / "results.md", root / "docs" / "experiments.md")
    before = {page: page.read_text() for page in pages}
    only_quick = tmp_path / "results"
    shutil.copytree(tiny_results / "results" / "tiny-quick", only_quick / "tiny-quick")
    # Round trip: the full folder's section and seed-case row are kept as they were, word for word.
    assert docs.write(root, only_quick, check=True, keep_absent=True) == []
    for path, text in before.items():
        assert docs.render(root, only_quick, keep_absent=True)[path] == text
    # Without the flag the full run's section is gone and the row falls back to the quick run.
    plain = docs.render(root, only_quick)
    assert "`results/tiny/` (full)" not in plain[root / "docs" / "results.md"]
    assert "| quick: 2,000 users" in plain[root / "README.md"]
    # A kept section is only kept while its folder is absent: present folders are tabled afresh.
    stale = before[root / "docs" / "results.md"].replace("4 runs", "3 runs")
    (root / "docs" / "results.md").write_text(stale)
    rendered = docs.render(root, only_quick, keep_absent=True)[root / "docs" / "results.md"]
    assert "`results/tiny/` (full): 2,000 users, 0.05 days, 2 replicates per ranker, 3 runs" in rendered
    assert "`results/tiny-quick/` (quick): 2,000 users, 0.05 days, 2 replicates per ranker, 4 runs" in rendered
    assert "| never run | `absent` | not run yet |" in rendered
    # A folder run from an edited checkout says so wherever its revision is shown.
    edited = tmp_path / "edited"
    shutil.copytree(tiny_results / "results" / "tiny", edited / "tiny")
    manifest = edited / "tiny" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "git_changes": ["experiments/tiny.toml"]}))
    page = docs.render(root, edited)[root / "docs" / "results.md"]
    assert "revision `" in page and "` with uncommitted changes to `experiments/tiny.toml`" in page
    assert page.count("+ uncommitted changes |") == 3  # the seed-case row and the two band tables' rows
    # A section is full or quick by its label, whatever its folder and experiment are called.
    texts = docs.folder_texts("`out/bar-quick/` (full): a\n\n| x |\n\n`out/bar-quick-quick/` (quick): b\n")
    assert texts == {False: "`out/bar-quick/` (full): a\n\n| x |", True: "`out/bar-quick-quick/` (quick): b"}


def test_generator_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("<!-- generated:nonsense -->\n<!-- /generated:nonsense -->\n")
    monkeypatch.chdir(tmp_path)
    assert main(["docs"]) == 2
    assert "README.md: unknown generated block 'nonsense'" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("<!-- generated:seed-cases -->\nno end marker\n")
    assert main(["docs"]) == 2
    assert "README.md: no <!-- generated:seed-cases -->" in capsys.readouterr().err


def _band_folder(path: Path, rankers: list[dict[str, str]], runs: dict[str, list[object]]) -> docs.Folder:
    """A results folder with only what the band table reads: manifest, an empty summary, runs."""
    import pyarrow as pa

    path.mkdir(parents=True)
    config = {"rankers": rankers, "baseline_point": 1, "world": {"users": 1000}, "horizon_days": 2.0,
              "replicates": 2}
    (path / "manifest.json").write_text(json.dumps({"experiment": path.name, "config": config,
                                                    "git_revision": "f" * 40}))
    pq.write_table(pa.table({"ranker": pa.array([], pa.string()), "metric": pa.array([], pa.string())}),
                   path / "summary.parquet")
    pq.write_table(pa.table(runs), path / "runs.parquet")
    return docs.read_folder(path)


def test_band_table_reads_the_default_content_ranker_at_the_reference_point(tmp_path: Path) -> None:
    rates = {"like_rate": [0.04, 0.04, 0.05, 0.2, 0.01], "comment_rate": [0.005, 0.005, None, 0.02, 0.0],
             "share_rate": [0.003, 0.003, 0.003, 0.01, 0.0]}
    runs = {"run_id": ["content-p0-r0", "content-p1-r0", "content-p1-r1", "wide-p1-r0", "follower-p1-r0"],
            "ranker": ["content", "content", "content", "wide", "follower"], "sweep_x": [0.0, 1.0, 1.0, 1.0, 1.0],
            "mean_watch_fraction": [0.9, 0.45, 0.47, 0.1, 0.44], "mean_daily_watch_min": [10.0, 61.0, 49.0, 5.0, 9.0],
            "views_median_over_mean": [0.5, 0.1, 0.3, 0.1, 0.1], "views_bottom95_mean": [9.0, 270.0, None, 1.0, 1.0],
            "views_tail_hill": [3.0, 1.5, 1.7, 1.0, 1.0], **rates}
    folder = _band_folder(tmp_path / "x", [{"name": "content"}, {"name": "content", "label": "wide"},
                                           {"name": "follower"}], runs)
    n, values = docs.band_values(folder)
    # point 1 (the file's baseline_point), the ranker named and labelled "content" only
    assert n == 2
    assert values["mean watch fraction"] == [0.45, 0.47]
    assert values["likes + comments + shares per view"] == [0.04 + 0.005 + 0.003]  # a run without comments: none
    assert values["mean daily watch time (user-days with a session)"] == [61.0, 49.0]
    table = docs.bands_table({"x": [folder]}, ["x", "y"]).splitlines()
    assert table[2] == ("| `x` | 1,000 users, 2 d | 2 | 46.0% (runs 45.0%–47.0%; 2/2 inside) | 4.80% (1/1 inside) | "
                        "55.0 min (runs 49.0 min–61.0 min; 1/2 inside) | full: `ffffffffff` |")
    assert table[3] == "| `y` | not run yet | | | | | |"
    # The shape of views: the same runs, the same judging, its own measures and heading.
    shape = docs.bands_table({"x": [folder]}, ["x"], heading=docs.SHAPE_HEADING).splitlines()
    assert shape[0].startswith("| experiment | world | content runs | median ÷ mean views per post (band 0.03–0.20) |")
    assert shape[2] == ("| `x` | 1,000 users, 2 d | 2 | 0.20 (runs 0.10–0.30; 1/2 inside) | 270 (1/1 inside) | "
                        "**1.60** (runs 1.50–1.70; 0/2 inside) | full: `ffffffffff` |")  # a bound is inside
    relabelled = _band_folder(tmp_path / "z", [{"name": "content", "label": "wide"}], runs)
    assert docs.bands_table({"z": [relabelled]}, ["z"]).splitlines()[2] == \
        "| `z` | no default content ranker | | | | | full: `ffffffffff` |"


def test_claims_cell_counts_the_verdicts_and_a_kept_row_gets_the_column(tmp_path: Path) -> None:
    folder = docs.Folder(path=tmp_path, experiment="x", quick=False, users="1", days=1.0, replicates=5, runs=10,
                         revision="abc", highlights=(), rankers=(), summary={}, description="")
    assert docs.claims_cell(folder) == "—"  # no claims.parquet
    verdicts = {"verdict": ["pass", "fail", "pass", "too few replicates"]}
    pq.write_table(pa.table(verdicts), tmp_path / "claims.parquet")
    assert docs.claims_cell(folder) == "**2 of 4 pass**"
    pq.write_table(pa.table({"verdict": ["pass", "pass"]}), tmp_path / "claims.parquet")
    assert docs.claims_cell(folder) == "2 of 2 pass"
    pq.write_table(pa.table({"verdict": pa.array([], pa.string())}), tmp_path / "claims.parquet")
    assert docs.claims_cell(folder) == "none declared"
    # A row kept from before the column (--keep-absent) gets a "—" there, not a shifted table.
    kept = docs.Kept.none()
    kept.rows["gone"] = "| old words | `gone` | `m` | content 1 · follower 2 | full: 1 users, 1 d, 2 rep., `abc` |"
    table = docs.seed_case_table({}, [("gone", "a case")], kept).splitlines()
    assert table[2] == "| a case | `gone` | `m` | content 1 · follower 2 | — | full: 1 users, 1 d, 2 rep., `abc` |"


def test_band_cell_gives_the_median_the_runs_range_and_the_runs_inside() -> None:
    assert docs._band_cell([0.45, 0.47, 0.41], "share", 0.40, 0.50) == "45.0% (runs 41.0%–47.0%; 3/3 inside)"
    # a median outside the band is in bold, at a precision that does not round it onto the bound;
    # runs inside are counted one by one
    assert docs._band_cell([0.038, 0.039, 0.041], "percent", 0.04, 0.07) == "**3.90%** (runs 3.80%–4.10%; 1/3 inside)"
    assert docs._band_cell([49.7, 49.8, 50.2], "min", 50.0, 100.0) == \
        "**49.8 min** (runs 49.7 min–50.2 min; 1/3 inside)"
    assert docs._band_cell([61.0], "min", 50.0, 100.0) == "61.0 min (1/1 inside)"
    assert docs._band_cell([], "min", 50.0, 100.0) == "—"


def test_plain_tables_print_a_missing_value_as_a_dash() -> None:
    assert docs._plain_table({"ci_low": [None, 0.25], "verdict": ["fail", "pass"]})[2:] == [
        "| — | fail |", "| 0.25 | pass |"]


def test_number_formats() -> None:
    assert docs.number("focal_reach_ratio", 1264.4) == "1,264"
    assert docs.number("focal_reach_ratio", 0.8) == "0.8"
    assert docs.number("focal_reach_share", 0.2213) == "22.1%"
    assert docs.number("sounds.named.top_decile_via_others", 0.75) == "75%"
    assert docs.number("focal_sellout_hours", None) == "—"
    assert docs.number("focal_sellout_hours", float("nan")) == "—"
    # A paired difference is signed, and a difference of two shares is in percentage points.
    assert docs.difference("focal_reach_share", 0.599) == "+59.9 pp"
    assert docs.difference("like_rate", -0.0132) == "-1.32 pp"
    assert docs.difference("focal_reach_ratio", 3425.2) == "+3,425"
    assert docs.difference("focal_views", 0.0) == "0"
    assert docs.difference("focal_reach_share", None) == "—"


def test_docstring_examples_hold() -> None:
    """The examples in the docstrings of the docs generator and the report's formatting run as written."""
    import doctest

    from sim.report import formatting

    for module in (docs, formatting):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
