"""Command line: parse, call the runner, print.  ``python -m sim --help``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from sim.batch.overview import summary_lines
from sim.batch.runner import EXECUTORS, Interrupted, Runner, RunnerError, RunOutcome, plan
from sim.config import (
    ConfigError,
    check_memory,
    format_bytes,
    load,
    machine_memory_bytes,
    overrides_of,
    parse_value,
    points,
    reference,
)

EXPERIMENTS = Path("experiments")


def _overrides(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError([f"--set {pair!r}: expected key=value"])
        out[key.strip()] = parse_value(value.strip())
    return out


def _only(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise RunnerError(f"--only {text!r}: expected key=value[,key=value]")
        out[key.strip()] = value.strip()
    return out


def cmd_run(args: argparse.Namespace) -> int:
    overrides = _overrides(args.set)
    if args.replicates is not None:
        overrides["replicates"] = args.replicates
    exp = load(args.file, overrides, quick=args.quick)
    out = Path(args.out) if args.out else Path("results") / (exp.name + ("-quick" if args.quick else ""))
    pts = points(exp)
    keys = plan(pts, _only(args.only))
    if args.ray_address and args.executor != "ray":
        raise RunnerError("--ray-address needs --executor ray")
    jobs = args.jobs or os.cpu_count() or 1
    where = {"process": f"{jobs} jobs", "serial": "this process"}.get(args.executor) or \
        f"Ray at {args.ray_address or 'auto'}"
    # What the runs span, --only applied: "32 runs (2 points x 1 ranker x 16 replicates)".
    counts = {field: len({getattr(k, field) for k in keys}) for field in ("point", "ranker", "replicate")}
    span = " x ".join(f"{n} {field}{'s' * (n != 1)}" for field, n in counts.items())
    print(f"{exp.name}: {len(keys)} runs ({span}), "
          f"{exp.world.users:,} users, {exp.horizon_days:g} days, {where} -> {out}", file=sys.stderr)
    runner = Runner(exp, out, jobs=jobs, force=args.force, overrides=overrides, executor=args.executor,
                    ray_address=args.ray_address, command=args.command, quick=args.quick)

    def summarise(outcomes: list[RunOutcome]) -> None:  # under the folder's lock, like the runs
        for line in summary_lines(out, exp):
            print(line)
        if any(o.error is None for o in outcomes) or not outcomes:
            _report(out)

    try:
        outcomes = runner.run(keys, after=summarise)
    except Interrupted as exc:
        print(exc, file=sys.stderr)
        return 143 if exc.terminated else 130
    failed = [o for o in outcomes if o.error]
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(o.run_id for o in failed)}", file=sys.stderr)
        return 1
    return 0


def _report(out: Path) -> None:
    """Draw plots/ and report.md after a run (needs matplotlib: the plots extra)."""
    try:
        from sim.report import ReportError, build
    except ImportError as exc:
        print(f"report skipped: {exc} (pip install -e '.[plots]')", file=sys.stderr)
        return
    try:
        print(f"report: {build(out)}", file=sys.stderr)
    except ReportError as exc:
        print(f"report failed: {exc}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from sim.report import ReportError, build

    folder = Path(args.name)
    if not folder.exists() and not args.name.endswith("/"):
        folder = Path("results") / args.name
    try:
        print(build(folder))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    exp = load(args.file, _overrides(args.set))
    memory = machine_memory_bytes()
    print(f"{args.file}: ok ({exp.name}: {len(points(exp))} points x {len(exp.rankers)} rankers x "
          f"{exp.replicates} replicates, "
          f"{exp.world.users:,} users, {exp.horizon_days:g} days; peak memory about "
          f"{format_bytes(check_memory(exp))} per run"
          f"{f' of {format_bytes(memory)}' if memory else ''})")
    tuned = overrides_of(exp)
    for key, value in tuned.items():
        print(f"  overrides calibrated default: {key} = {value}")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    failed = 0
    for folder in map(Path, args.folders):
        path = folder / "claims.parquet"
        if not path.exists():
            print(f"{folder}: no claims.parquet (run the experiment first)")
            failed += 1
            continue
        claims = pq.read_table(path).to_pylist()
        print(f"{folder}: {sum(c['verdict'] == 'pass' for c in claims)} of {len(claims)} claims pass")
        for c in claims:
            value = "n/a" if c["value"] is None else f"{c['value']:.4g}"
            ci = "" if c["ci_low"] is None or c["ci_high"] is None else \
                f" (95% interval {c['ci_low']:.4g} to {c['ci_high']:.4g})"
            print(f"  {c['verdict'].upper():<19}{c['statistic']}({c['metric']}, {c['subject']}) = {value}{ci} "
                  f"{c['compare']} {c['threshold']:g}: {c['sentence']}")
        failed += sum(c["verdict"] != "pass" for c in claims)
    return 1 if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    for path in sorted(EXPERIMENTS.glob("*.toml")):
        try:
            exp = load(path)
            first = exp.description.strip().splitlines()[0] if exp.description.strip() else ""
        except ConfigError as exc:
            first = f"INVALID: {exc.problems[0]}"
        print(f"{path.stem:<22}{first}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.results:
        from sim.recording import MEASURES, SCHEMAS

        for table, columns in SCHEMAS.items():
            print(f"\n{table}")
            for name, dtype, unit, meaning in columns:
                print(f"  {name:<32}{str(dtype):<10}{unit:<13}{meaning}")
        print("\nmeasures: metric by kind (summary.parquet names them <kind>.<entity>.<metric>)")
        width = max(map(len, MEASURES)) + 2
        for kind, metrics in MEASURES.items():
            for metric, meaning in metrics.items():
                print(f"  {kind:<{width}}{metric:<30}{meaning}")
        return 0
    from sim.rankers import RANKERS

    for key, tp, default, valid_range, desc in reference():
        print(f"{key:<41} {tp:<15} {default:<21} {valid_range:<15} {desc}")
    for name, cls in sorted(RANKERS.items()):
        print(f"\nrankers params for name = \"{name}\"")
        for key, tp, default, valid_range, desc in reference(cls.Params, "params"):
            print(f"  {key:<39} {tp:<15} {default:<21} {valid_range:<15} {desc}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from sim import bench

    if args.jobs_scaling:
        rows = bench.jobs_scaling(args.runs, args.users or 100_000, args.days or 0.5)
        print(bench.jobs_table(rows))
        out = Path("results") / "bench"
        out.mkdir(parents=True, exist_ok=True)
        (out / "jobs_scaling.json").write_text(json.dumps(rows, indent=1) + "\n")
    elif args.scaling:
        rows = bench.scaling(args.days or 1.0, Path("results") / "bench")
        print(bench.table(rows))
    else:
        rows = [bench.bench(args.users or 200_000, args.days or 1.0)]
        print(bench.table(rows))
    if args.json:
        print(json.dumps(rows[-1]))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from sim import docs

    try:
        changed = docs.write(Path("."), Path(args.results), check=args.check, keep_absent=args.keep_absent)
    except docs.DocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    return 1 if args.check and changed else 0


def cmd_check_ranker(args: argparse.Namespace) -> int:
    from sim.rankers.contract import check_ranker

    sys.path.insert(0, os.getcwd())  # module:Class from the current directory, as with python -m
    try:
        results = check_ranker(args.ranker)
    except (ImportError, AttributeError, KeyError) as exc:
        print(f"error: ranker {args.ranker!r}: {exc}", file=sys.stderr)
        return 2
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.check}" + (f"\n      {r.detail}" if r.detail else ""))
    failed = sum(not r.passed for r in results)
    print(f"{args.ranker}: {len(results) - failed} of {len(results)} checks passed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run an experiment file")
    p.add_argument("file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, e.g. world.users=50000 or rankers.content.explore_share=0.2")
    p.add_argument("--jobs", type=int, default=None,
                   help="processes (default: all cores); with --executor ray the cluster's CPUs decide")
    p.add_argument("--executor", choices=EXECUTORS, default="process",
                   help="where runs go: local processes (one per run), this process (serial: for a debugger), "
                        "or a Ray cluster (pip install 'feedsim[ray]')")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="Ray head node (default: RAY_ADDRESS, a cluster started here with `ray start`, "
                        "else a local Ray); every node must see --out at the same path")
    p.add_argument("--replicates", type=int, default=None)
    p.add_argument("--only", default=None, help="e.g. ranker=content,replicate=0 (also point=N)")
    p.add_argument("--quick", action="store_true",
                   help="the file's [quick] variant (default: <= 50,000 users, 2 replicates, <= 1 day); "
                        "results go to results/<name>-quick")
    p.add_argument("--out", default=None, help="results folder (default results/<name>)")
    p.add_argument("--force", action="store_true",
                   help="replace results of a different configuration or git revision (only in a feedsim "
                        "results folder, and only what feedsim wrote); results of this one resume")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="redraw plots/ and report.md from a results folder's Parquet files")
    p.add_argument("name", help="experiment name (results/<name>) or a results folder")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("validate", help="check an experiment file without running it")
    p.add_argument("file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("claims", help="print the declared claims' verdicts of results folders; exit 1 unless all pass")
    p.add_argument("folders", nargs="+", metavar="RESULTS_FOLDER")
    p.set_defaults(func=cmd_claims)
    p = sub.add_parser("list", help="list experiments with their descriptions")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("schema", help="print every configuration field (or --results: every result column)")
    p.add_argument("--results", action="store_true")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("bench", help="engine impressions/s against a floor kernel, in one process; "
                       "or --jobs-scaling: a batch of runs on 1 and on all cores")
    p.add_argument("--users", type=int, default=None, help="default 200,000 (--jobs-scaling: 100,000)")
    p.add_argument("--days", type=float, default=None, help="default 1 (--jobs-scaling: 0.5)")
    p.add_argument("--scaling", action="store_true", help="50k to 1M users; writes results/bench/")
    p.add_argument("--jobs-scaling", action="store_true",
                   help="one batch of --runs identical runs with --jobs 1, then all cores: runs/s, speedup")
    p.add_argument("--runs", type=int, default=4, help="runs in the --jobs-scaling batch")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("docs", help="write docs/results.md, docs/results-schema.md and the results tables in "
                       "README.md and docs/experiments.md from results/ and the schema")
    p.add_argument("--results", default="results", help="folder holding results/<name>/ (default results)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is out of date")
    p.add_argument("--keep-absent", action="store_true",
                   help="experiments whose folders are not under --results keep what the docs last said of "
                   "them (each section still names its revision); default: they show as not run yet")
    p.set_defaults(func=cmd_docs)
    p = sub.add_parser("check-ranker", help="run the ranker contract suite on a ranker (name or module:Class)")
    p.add_argument("ranker", help="a registered name, or module:Class importable from here or PYTHONPATH")
    p.set_defaults(func=cmd_check_ranker)
    args = parser.parse_args(argv)
    args.command = "python -m sim " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args))
    except (ConfigError, RunnerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `python -m sim schema | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # a folder or file the command could not read or write (disk full, permissions)
        print(f"error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
