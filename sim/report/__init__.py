"""Build ``plots/`` and ``report.md`` from a results folder.

Reads only the folder's Parquet tables and ``manifest.json`` (never re-runs a
simulation), so a report can be rebuilt at any time::

    python -m sim.report results/<experiment>

A missing or unreadable table raises :class:`ReportError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.analysis import metrics
from sim.batch.runner import measure_columns
from sim.model.rng import streams
from sim.recording import SCHEMAS, make_table, schema, sweep_field
from sim.report import figures as plots

REQUIRED = ("runs", "focal", "posts", "promotions", "timeseries")
#: Columns added after results were first written: older folders still report, with nulls there.
ADDED_LATER = {("posts", "product"), ("posts", "format"), ("posts", "views_in_stock")}
SWEEP_METRICS = ("focal_reach_ratio", "low_follower_breakout_rate", "views_gini", "median_daily_watch_min")


class ReportError(RuntimeError):
    """A results folder cannot be reported on; the message starts with the offending path."""


# --------------------------------------------------------------------------- loading


def load_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "manifest.json"
    if not path.exists():
        raise ReportError(f"{path}: missing (is {out_dir} a results folder written by `python -m sim run`?)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise ReportError(f"{path}: no 'config' object")
    return manifest


def load_table(path: Path, table: str) -> pa.Table:
    """Read one result table; check it has the columns of ``SCHEMAS[table]``."""
    if not path.exists():
        raise ReportError(f"{path}: missing (the '{table}' table; re-run the experiment to write it)")
    try:
        t = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ReportError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [name for name, _, _, _ in SCHEMAS[table] if name not in t.column_names]
    for name in [m for m in missing if (table, m) in ADDED_LATER]:
        t = t.append_column(name, pa.nulls(t.num_rows, type=schema(table).field(name).type))
        missing.remove(name)
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)} of the '{table}' table")
    return t


def load_impressions(root: Path) -> pa.Table | None:
    """Sampled For You pool impressions of untracked posts (ranker, channel, tracked), or None when the
    folder has no impressions."""
    if not root.is_dir():
        return None
    files = sorted(p for p in root.rglob("*.parquet")
                   if not any(part.startswith(".") or part.endswith(".tmp") for part in p.relative_to(root).parts))
    parts = []
    for f in files:
        try:
            t = pq.ParquetFile(f).read(columns=["ranker", "channel", "tracked"])
            # keep only what the figures use (pool impressions of untracked posts): samples can be large
            parts.append(t.filter(pc.and_(pc.starts_with(t["channel"], "for_you_pool_"),
                                          pc.invert(pc.fill_null(t["tracked"], False)))))
        except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
            raise ReportError(f"{f}: not a readable impressions Parquet file ({exc})") from exc
    return pa.concat_tables(parts) if parts else None


def load(out_dir: Path) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    manifest = load_manifest(out_dir)
    tables = {name: load_table(out_dir / f"{name}.parquet", name) for name in REQUIRED}
    imp = load_impressions(out_dir / "impressions")
    if imp is not None:
        tables["impressions"] = imp
    return manifest, tables


def was_quick(manifest: dict[str, Any], out_dir: Path | None = None) -> bool | None:
    """Whether the folder was made with ``--quick``: the manifest's ``quick`` key; for folders written
    before it, a folder named ``<experiment>-quick`` (the default for --quick) counts as quick, else
    None (not recorded)."""
    if isinstance(manifest.get("quick"), bool):
        return bool(manifest["quick"])
    if out_dir is not None and Path(out_dir).resolve().name.endswith("-quick"):
        return True
    return None


def pool_sizes(config: dict[str, Any]) -> tuple[float, ...]:
    """Impressions of each traffic-pool stage, from the first ranker with a ladder (``pool_first``,
    ``pool_growth``, ``stages`` in its resolved params); empty when none has one or two disagree."""
    ladders = {(p["pool_first"], p["pool_growth"], p["stages"]) for r in config.get("rankers", [])
               if all(k in (p := r.get("params") or {}) for k in ("pool_first", "pool_growth", "stages"))}
    if len(ladders) != 1:
        return ()
    first, growth, stages = ladders.pop()
    return tuple(float(first) * float(growth) ** s for s in range(int(stages)))


def context(manifest: dict[str, Any], runs: pa.Table, plots_dir: Path) -> plots.Context:
    config = manifest["config"]
    labels = tuple(str(r.get("label") or r.get("name")) for r in config.get("rankers", []))
    present = [str(r) for r in plots.column(runs, "ranker")] if runs.num_rows else []
    labels = labels + tuple(sorted(set(present) - set(labels)))
    reps = set(plots.column(runs, "replicate").tolist()) if runs.num_rows else set()
    replicates = len(reps) if reps else int(config.get("replicates", 0))
    events = config.get("events") or []
    focal = config.get("focal") or (events[0].get("name", "") if events else "")
    baseline = config.get("baseline") or ""
    if baseline not in labels:
        baseline = labels[-1] if labels else ""
    return plots.Context(experiment=str(manifest.get("experiment") or config.get("name") or "experiment"),
                         seed=int(manifest.get("seed", config.get("seed", 0))), replicates=replicates,
                         labels=labels, plots_dir=plots_dir, baseline=baseline, focal=str(focal),
                         git_revision=manifest.get("git_revision"), users=_int_or_none(config.get("world", {})
                                                                                       .get("users")),
                         days=_float_or_none(config.get("horizon_days")), quick=was_quick(manifest, plots_dir.parent),
                         pool_sizes=pool_sizes(config))


def _int_or_none(x: Any) -> int | None:
    return int(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _float_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


# --------------------------------------------------------------------------- figures


def sellouts(config: dict[str, Any], focal: pa.Table, posts: pa.Table) -> dict[str, dict[str, float]]:
    """Product -> run_id -> exact sell-out time (h from the end of warm-up), from tracked posts that sell
    the product (focal ``sellout_hours`` counts from the post)."""
    product_of = {str(e.get("name")): str(e.get("product")) for e in config.get("events") or [] if e.get("product")}
    created = plots.created_hours(posts, focal)
    out: dict[str, dict[str, float]] = {}
    if focal.num_rows == 0:
        return out
    for run, entity, hours in zip(plots.column(focal, "run_id"), plots.column(focal, "entity"),
                                  plots.column(focal, "sellout_hours"), strict=True):
        key = (str(run), str(entity))
        if str(entity) in product_of and np.isfinite(hours) and key in created:
            out.setdefault(product_of[str(entity)], {})[str(run)] = created[key] + float(hours)
    return out


def reference_point(runs: pa.Table, config: dict[str, Any]) -> tuple[set[str], str] | None:
    """In a sweep, the run ids of the point the tracked-entity figures show (the file's
    ``baseline_point``, else point 0) and a sentence naming it; ``None`` without a sweep."""
    sweeps = sorted(c for c in runs.column_names if c.startswith("sweep_"))
    if not sweeps or runs.num_rows == 0:
        return None
    point = max(int(config.get("baseline_point", -1)), 0)
    ids = [str(r) for r in plots.column(runs, "run_id")]
    mine = [i for i, r in enumerate(ids) if r.rsplit("-r", 1)[0].endswith(f"-p{point}")]
    if not mine:
        return None
    params = ", ".join(f"{c.removeprefix('sweep_')} = {plots.column(runs, c)[mine[0]]}" for c in sweeps)
    return {ids[i] for i in mine}, f" Sweep point {point} only ({params}); the sweep figures compare the points."


def reference_values(runs: pa.Table, config: dict[str, Any]) -> dict[str, Any]:
    """In a sweep, the sweep columns' values at the reference point (see :func:`reference_point`);
    empty without a sweep."""
    reference = reference_point(runs, config)
    if reference is None:
        return {}
    ids = [str(r) for r in plots.column(runs, "run_id")]
    first = next(i for i, r in enumerate(ids) if r in reference[0])
    return {c: runs.column(c)[first].as_py() for c in runs.column_names if c.startswith("sweep_")}


def summary_table(runs: pa.Table, config: dict[str, Any], seed: int) -> pa.Table:
    """The ``summary.parquet`` of these runs (measure columns included), made as the runner makes it:
    the same :func:`sim.analysis.metrics.summarise` and the same bootstrap stream, so a folder without one (written
    before it existed) still gets the intervals the runner would have written."""
    labels = [str(r.get("label") or r.get("name")) for r in config.get("rankers", [])]
    groups = sorted(c for c in runs.column_names if c.startswith("sweep_"))
    base_point = int(config.get("baseline_point", -1))
    columns = metrics.summarise(runs.to_pydict(), labels, config.get("baseline") or None, streams(seed, 0)["bootstrap"],
                                groups=groups, base_point=base_point if base_point >= 0 else None)
    table = make_table("summary", columns)
    for name in groups:
        values = pa.array(columns[name])
        table = table.append_column(sweep_field(name, values.type), values)
    return table


def _runs_only(table: pa.Table, run_ids: set[str]) -> pa.Table:
    if table.num_rows == 0 or "run_id" not in table.column_names:
        return table
    return table.filter(pc.is_in(table["run_id"], value_set=pa.array(sorted(run_ids), type=table["run_id"].type)))


def draw(tables: dict[str, pa.Table], ctx: plots.Context, config: dict[str, Any] | None = None
         ) -> list[tuple[str, str, str]]:
    """Draw every figure that applies; return (file stem, title, how to read it).

    In a sweep, the figures of tracked posts, accounts and products show one point (see
    :func:`reference_point`): a median over points would mix worlds that differ on purpose."""
    config = config or {}
    runs, focal, posts = tables["runs"], tables["focal"], tables["posts"]
    promotions, ts = tables["promotions"], tables["timeseries"]
    kinds = set(map(str, plots.column(ts, "kind"))) if ts.num_rows else set()
    tracked = {"ts": ts, "focal": focal, "posts": posts, "promotions": promotions}
    at_point = ""
    reference = reference_point(runs, config)
    ref_runs = runs
    if reference is not None:
        tracked = {k: _runs_only(t, reference[0]) for k, t in tracked.items()}
        at_point = reference[1]
        ref_runs = _runs_only(runs, reference[0])
    out: list[tuple[str, str, str]] = []
    if "post" in kinds:
        out.append(("reach_over_time", plots.reach_over_time(tracked["ts"], tracked["focal"], tracked["posts"], ctx),
                    "Cumulative views of each tracked post since it was posted (log scale); dashed and dotted "
                    "lines mark the author's follower count and its multiples." + at_point))
    if posts.num_rows:
        out.append(("view_sources", plots.view_sources(posts, ctx, tables.get("impressions")),
                    "Where impressions come from, per ranker: followed accounts (blue) against For You "
                    "traffic pools and interest retrieval (warm colours)."))
    if promotions.num_rows:
        out.append(("pool_ladder", plots.pool_ladder(tracked["promotions"], tracked["posts"], tracked["focal"], ctx),
                    "The traffic-pool ladder: how many posts reach each stage (log scale), and when the tracked "
                    "post was promoted in each run." + at_point))
    if posts.num_rows:
        out.append(("views_vs_followers", plots.views_vs_followers(posts, ctx),
                    "Every post's views against its author's follower count (log-log); a slope near 1 means "
                    "reach is bought with followers, near 0 that content decides."))
        out.append(("inequality", plots.inequality(posts, ctx),
                    "Lorenz curves: how unequally views are spread over posts and over creators."))
    if "account" in kinds:
        out.append(("follower_growth", plots.follower_growth(tracked["ts"], ctx),
                    "Followers of the tracked accounts over time." + at_point))
    if "product" in kinds:
        sold_out = sellouts(config, tracked["focal"], tracked["posts"])
        inv = plots._series(tracked["ts"], "product", "inventory")
        empty = bool(sold_out) or (inv.num_rows > 0 and bool((plots.column(inv, "value") <= 0).any()))
        out.append(("inventory", plots.inventory(tracked["ts"], ctx, sold_out),
                    "Units in stock over time, per ranker" + ("; dashed lines: median sell-out time." if empty else
                                                              "; no run sold out.") + at_point))
    if len(set(map(str, plots.column(runs, "ranker")))) >= 2:
        rows = plots.summary_rows(tables.get("summary"), reference_values(runs, config))
        small = ctx.replicates < metrics.MIN_REPLICATES
        out.append(("paired_differences", plots.forest(ref_runs, ctx, rows or None),
                    f"Headline metrics of each ranker minus {ctx.baseline}, paired by replicate, "
                    + (f"means only: n = {ctx.replicates}, no interval below {metrics.MIN_REPLICATES} replicates."
                       if small else "with the 95% bootstrap intervals of summary.parquet; an interval that "
                       "excludes zero is a difference the replicates support.") + at_point))
    sweeps = sorted(c for c in runs.column_names if c.startswith("sweep_"))
    for metric in config.get("highlights") or []:
        if metric not in runs.column_names or not np.isfinite(plots.column(runs, metric).astype(float)).any():
            continue
        stem = "highlight_" + "".join(c if c.isalnum() else "_" for c in metric)
        if sweeps:
            for x in sweeps:
                out.append((f"{stem}_{x}", plots.sweep(runs, x, metric, ctx, f"{stem}_{x}"),
                            f"Key metric {metric} against {x.removeprefix('sweep_')}: mean and 95% CI over "
                            "replicates, one line per ranker."))
        else:
            out.append((stem, plots.by_ranker_ci(runs, metric, ctx, stem),
                        f"Key metric {metric} per ranker: each replicate, and the mean with its 95% t-interval."))
    for x in sweeps:
        for metric in SWEEP_METRICS:
            if metric in runs.column_names and np.isfinite(plots.column(runs, metric).astype(float)).any():
                name = f"sweep_{x.removeprefix('sweep_')}_{metric}"
                out.append((name, plots.sweep(runs, x, metric, ctx, name),
                            f"{metric} against the swept parameter {x.removeprefix('sweep_')}: mean and 95% CI "
                            "over replicates, one line per ranker."))
    return out


# --------------------------------------------------------------------------- markdown


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _setup_rows(manifest: dict[str, Any], ctx: plots.Context, runs: pa.Table) -> list[list[str]]:
    config = manifest["config"]
    world = config.get("world", {})
    rows = [["Users", f"{world.get('users', 'n/a'):,}" if isinstance(world.get("users"), int) else "n/a"],
            ["Simulated time", f"{config.get('horizon_days', 'n/a')} days after a "
                               f"{config.get('warmup_hours', 'n/a')} h warm-up"],
            ["Replicates", f"{config.get('replicates', 'n/a')} per ranker ({runs.num_rows} runs in the tables; "
                           "rankers of one replicate share the world and arrivals)"]]
    rankers = []
    for r in config.get("rankers", []):
        label = r.get("label") or r.get("name")
        text = f"{label}" + (f" (`{r.get('name')}`)" if r.get("label") and r.get("label") != r.get("name") else "")
        tuned = _tuned_params(str(r.get("name")), r.get("params") or {})
        if tuned:
            text += " with " + ", ".join(f"`{k}={v}`" for k, v in tuned.items())
        if label == ctx.baseline:
            text += " — baseline"
        rankers.append(text)
    rows.append(["Rankers", "; ".join(rankers) or "n/a"])
    rows.append(["Seed", str(ctx.seed)])
    if ctx.focal:
        rows.append(["Focal post", ctx.focal])
    accounts = [f"{a.get('name')} ({a.get('followers', 0):,} followers, {a.get('topic', '')})"
                for a in world.get("accounts", [])]
    if accounts:
        rows.append(["Planted accounts", "; ".join(accounts)])
    products = [f"{p.get('name')} ({p.get('inventory', 0):,} units, sold by {p.get('seller')})"
                for p in world.get("products", [])]
    if products:
        rows.append(["Products", "; ".join(products)])
    rows.append(["Behaviour overrides", _behaviour_overrides(config.get("behavior", {})) or
                 "none (calibrated defaults)"])
    cli = manifest.get("overrides") or {}
    if cli:
        rows.append(["Command-line overrides", ", ".join(f"`{k}={v}`" for k, v in cli.items())])
    rate = (config.get("recording") or {}).get("impression_sample_rate")
    if rate is not None:
        rows.append(["Impressions sampled", plots.fmt_pct(float(rate))])
    compute = []
    if manifest.get("wall_s") is not None:
        compute.append(f"{float(manifest['wall_s']):,.0f} s wall")
    if manifest.get("jobs") is not None:
        compute.append(f"{manifest['jobs']} job(s)")
    if manifest.get("impressions_per_s"):
        compute.append(f"{float(manifest['impressions_per_s']):,.0f} impressions/s per process")
    if compute:
        rows.append(["Compute", ", ".join(compute)])
    if manifest.get("git_revision"):
        rows.append(["Git revision", f"`{manifest['git_revision']}`"])
    return rows


def _tuned_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Ranker parameters that differ from the ranker's defaults (all of them if the ranker is unknown here)."""
    try:
        from sim.rankers import RANKERS

        defaults = RANKERS[name].Params()
    except Exception:  # a user ranker ('module:Class') or one without defaults: show everything
        return dict(params)
    return {k: v for k, v in params.items() if getattr(defaults, k, object()) != v
            and not (isinstance(v, list) and list(getattr(defaults, k, ())) == v)}


def _behaviour_overrides(behavior: dict[str, Any]) -> str:
    try:
        from sim.config import BehaviorConfig
    except ImportError:  # pragma: no cover
        return ""
    base = BehaviorConfig()
    diffs = [f"`{f.name}={behavior[f.name]}` (default {getattr(base, f.name)})"
             for f in dataclasses.fields(BehaviorConfig)
             if f.name in behavior and behavior[f.name] != getattr(base, f.name)]
    return ", ".join(diffs)


def _no_interval(n: int) -> str:
    return f"n = {n}: no interval"


def _ci_cell(row: dict[str, Any] | None, kind: str, runs_total: int) -> str:
    """A headline cell from a summary row: mean [95% CI], or the mean and why there is no interval."""
    if row is None or not runs_total:
        return "n/a"
    n = int(row.get("n") or 0)
    if n == 0:
        return "none"
    mean, lo, hi = plots._num(row.get("mean")), plots._num(row.get("ci_low")), plots._num(row.get("ci_high"))
    cell = plots.fmt_metric(mean, kind)
    if np.isfinite(lo) and np.isfinite(hi):
        cell += f" [{plots.fmt_metric(lo, kind)}, {plots.fmt_metric(hi, kind)}]"
    elif n < metrics.MIN_REPLICATES:
        cell += f" ({_no_interval(n)})"
    if n < runs_total:
        cell += f" ({n} of {runs_total} runs)"
    return cell


def _description(config: dict[str, Any], ctx: plots.Context, name: str) -> list[str]:
    """The experiment's description; for a --quick folder its first line only, then what the folder ran
    (the rest of a description is written for the full run's world)."""
    description = str(config.get("description") or "").strip()
    first, _, rest = description.partition("\n")
    lines = [f"**{first.strip()}**", ""] if description else []
    if ctx.quick:
        lines += [f"This folder is a `--quick` run: {ctx.scale().removesuffix(' · --quick run')}. The file's "
                  f"description of the full run's world (in `experiments/{name}.toml`) does not apply to it; "
                  "its numbers are a smoke test, not the experiment's result.", ""]
    elif rest.strip():
        lines += [rest.strip(), ""]
    return lines


def _reproduce(manifest: dict[str, Any], ctx: plots.Context, out_dir: Path | None) -> list[str]:
    """The command that made the folder: the manifest's ``command``, else one rebuilt from its overrides,
    ``--quick`` and the folder."""
    name = ctx.experiment
    folder = str(out_dir) if out_dir is not None else f"results/{name}" + ("-quick" if ctx.quick else "")
    command = manifest.get("command")
    if not isinstance(command, str) or not command.strip():
        cli = manifest.get("overrides") or {}
        args = [f"--set {k}={_cli_value(v)}" for k, v in cli.items() if k != "replicates"]
        if "replicates" in cli:
            args.append(f"--replicates {cli['replicates']}")
        if ctx.quick:
            args.insert(0, "--quick")
        default = Path("results") / (name + ("-quick" if ctx.quick else ""))
        if out_dir is not None and Path(out_dir).resolve() != default.resolve():
            args.append(f"--out {shlex.quote(folder)}")
        command = " ".join([f"python -m sim run experiments/{name}.toml", *args])
        made = ("Rebuilt from the manifest (older folders do not record the command"
                + ("; whether it was `--quick` is not recorded either" if ctx.quick is None else "") + "):")
    else:
        made = "The command that made this folder:"
    return ["## Reproduce", "", f"Seed {ctx.seed} (from the experiment file); the same seed and revision "
            "give byte-identical Parquet tables. " + made, "", "```sh", command,
            "# rebuild this report from the tables", f"python -m sim report {shlex.quote(folder)}", "```", ""]


def markdown(manifest: dict[str, Any], tables: dict[str, pa.Table], ctx: plots.Context,
             figures: list[tuple[str, str, str]], out_dir: Path | None = None) -> str:
    config = manifest["config"]
    runs = tables["runs"]
    name = ctx.experiment
    lines = [f"# {name}", ""] + _description(config, ctx, name)
    if figures:
        lines += ["**Headline:** " + figures[0][1] + ".", ""]

    lines += ["## Setup", ""] + _md_table(["", ""], _setup_rows(manifest, ctx, runs)) + [""]

    reference = reference_point(runs, config)
    at_point = reference[1] if reference is not None else ""
    if reference is not None:
        runs = _runs_only(runs, reference[0])
    summary = plots.summary_rows(tables.get("summary"), reference_values(tables["runs"], config))
    labels = ctx.ordered(list(map(str, plots.column(runs, "ranker"))))
    ranker_col = plots.column(runs, "ranker")
    lines += ["## Headline numbers", "",
              "Mean over replicates with a 95% t-interval in brackets, as in `summary.parquet` (shares and "
              "other bounded quantities: the interval cut to the range the value can take); none: no run had "
              f"a value (e.g. no sell-out); no interval below {metrics.MIN_REPLICATES} replicates." + at_point, ""]
    rows = []
    for metric, label, kind in plots.HEADLINE_METRICS:
        if metric not in runs.column_names:
            continue
        rows.append([label] + [_ci_cell(summary.get((lb, metric)), kind, int((ranker_col == lb).sum()))
                               for lb in labels])
    lines += _md_table(["Metric"] + labels, rows) + [""]

    others = [lb for lb in labels if lb != ctx.baseline]
    if others and ctx.baseline in labels:
        diffs = plots.paired_differences(runs, labels, ctx.baseline, summary)
        lines += [f"### Paired differences versus {ctx.baseline}", "",
                  "Ranker minus baseline per replicate; mean and 95% percentile bootstrap interval from "
                  "`summary.parquet` (2,000 resamples, the experiment's `bootstrap` random stream); shares in "
                  f"percentage points; no interval below {metrics.MIN_REPLICATES} pairs." + at_point, ""]
        rows = []
        for metric, label, kind in plots.HEADLINE_METRICS:
            cells = []
            for lb in others:
                r = next((r for r in diffs if r["ranker"] == lb and r["metric"] == metric), None)
                if r is None:
                    cells.append("n/a")
                elif r["n"] == 0:
                    cells.append("n/a (no paired values)")
                else:
                    cell = plots.fmt_metric(r["mean"], kind, signed=True)
                    if np.isfinite(r["lo"]) and np.isfinite(r["hi"]):
                        cell += (f" [{plots.fmt_metric(r['lo'], kind, signed=True)}, "
                                 f"{plots.fmt_metric(r['hi'], kind, signed=True)}] (n={r['n']})")
                    else:
                        cell += f" ({_no_interval(r['n'])})"
                    cells.append(cell)
            if any(r["metric"] == metric for r in diffs):
                rows.append([label] + cells)
        lines += _md_table(["Metric"] + [f"{lb} − {ctx.baseline}" for lb in others], rows) + [""]

    lines += _measures_section(tables.get("summary"), ctx, list(config.get("highlights") or []),
                               _focal_entities(config), _constant_metrics(tables["runs"]))
    lines += _conversion_section(tables["posts"], ctx)

    lines += ["## Figures", "",
              "Each figure is in `plots/` as PNG (200 dpi, 16:9) and SVG; its headline is computed from the data. "
              "Colours: " + ", ".join(f"{lb} {ctx.color(lb)}" for lb in labels) + ".", ""]
    for stem, title, caption in figures:
        lines += [f"### {title}", "", f"![{title}](plots/{stem}.png)", "", caption, ""]

    lines += _reproduce(manifest, ctx, out_dir)
    if manifest.get("git_revision"):
        lines += [f"Code revision: `{manifest['git_revision']}`.", ""]
    lines += ["---", "", f"*feedsim · experiment '{name}' · {ctx.scale()} · seed {ctx.seed}*", ""]
    return "\n".join(lines)


def _focal_entities(config: dict[str, Any]) -> set[str]:
    """Names the experiment is about: its focal event, that event's account, product and sound."""
    events = config.get("events") or []
    focal = config.get("focal") or (events[0].get("name", "") if events else "")
    event: dict[str, Any] = next((e for e in events if e.get("name") == focal), {})
    return {str(v) for v in (focal, event.get("account"), event.get("product"), event.get("sound")) if v}


def _constant_metrics(runs: pa.Table) -> set[str]:
    """Columns of ``runs`` with one value in every run that has one (a world's planted size, a count
    of planted accounts): the same under every ranker, so they say nothing about rankers."""
    out = set()
    for name in runs.column_names:
        if name.count(".") < 2:
            continue
        values = plots.column(runs, name).astype(np.float64)
        values = values[np.isfinite(values)]
        if len(values) and np.all(values == values[0]):
            out.add(name)
    return out


def pooled_conversion_slope(posts: pa.Table, ranker: str, seed: int, min_views: int = metrics.CONVERSION_MIN_VIEWS,
                            n_boot: int = 2000) -> tuple[float, float, float, int]:
    """Conversion (purchases per view while in stock) against log(1 + comments) over every product
    post of a ranker with at least ``min_views`` views in stock, pooled over replicates: the OLS
    slope and a 95% bootstrap interval that resamples whole replicates (posts of one run are not
    independent), drawn from the experiment's ``bootstrap`` stream.  Posts without ``views_in_stock``
    (written before it existed) use all views.  Returns (slope, low, high, posts): the slope is nan with
    fewer than :data:`sim.analysis.metrics.MIN_SLOPE_POINTS` posts, the interval with fewer than
    :data:`sim.analysis.metrics.MIN_REPLICATES` replicates."""
    if "product" not in posts.column_names:
        return float("nan"), float("nan"), float("nan"), 0
    offered = posts["views"]
    if "views_in_stock" in posts.column_names:
        offered = pc.coalesce(posts["views_in_stock"], offered)
    keep = pc.and_(pc.and_(pc.equal(posts["ranker"], ranker), pc.is_valid(posts["product"])),
                   pc.greater_equal(offered, min_views))
    t = posts.filter(keep)
    views = offered.filter(keep).to_numpy(zero_copy_only=False).astype(float)
    x, y = np.log1p(plots.column(t, "comments")), plots.column(t, "purchases") / np.maximum(views, 1)
    rep = plots.column(t, "replicate")
    slope, n = metrics.slope_or_too_few(x, y)
    reps = np.unique(rep)
    if len(reps) < metrics.MIN_REPLICATES or not np.isfinite(slope):
        return slope, float("nan"), float("nan"), n
    rows = {r: np.flatnonzero(rep == r) for r in reps}
    rng = streams(seed, 0)["bootstrap"]
    boot = [metrics.linear_slope(x[idx], y[idx]) for idx in
            (np.concatenate([rows[r] for r in rng.choice(reps, len(reps))]) for _ in range(n_boot))]
    lo, hi = np.nanquantile(boot, [0.025, 0.975])
    return slope, float(lo), float(hi), len(x)


def _conversion_section(posts: pa.Table, ctx: plots.Context) -> list[str]:
    if "product" not in posts.column_names or posts.column("product").null_count == posts.num_rows:
        return []
    # In a sweep each point is its own population: one row per ranker and point, in sweep order.
    sweeps = sorted(c for c in posts.column_names if c.startswith("sweep_"))
    columns = [plots.column(posts, c).tolist() for c in sweeps]
    points = list(dict.fromkeys(zip(*columns, strict=True))) if sweeps else [()]
    rows = []
    for label in ctx.ordered(list(map(str, plots.column(posts, "ranker")))):
        for values in points:
            at = posts
            for c, v in zip(sweeps, values, strict=True):
                at = at.filter(pc.equal(at[c], v))
            slope, lo, hi, n = pooled_conversion_slope(at, label, ctx.seed)
            if not n:
                continue
            name = label + "".join(f", {c.removeprefix('sweep_')} = {v}" for c, v in zip(sweeps, values, strict=True))
            reps = len(set(plots.column(at, "replicate")[plots.column(at, "ranker") == label].tolist()))
            if not np.isfinite(slope):
                rows.append([name, str(n), f"too few posts (fewer than {metrics.MIN_SLOPE_POINTS})", "n/a"])
            else:
                rows.append([name, str(n), f"{1000 * slope:+.3f}", f"[{1000 * lo:+.3f}, {1000 * hi:+.3f}]"
                             if np.isfinite(lo) else _no_interval(reps)])
    if not rows:
        return []
    return ["### Conversion and comments", "",
            "Conversion (purchases per view while the product was in stock) against log(1 + comments), over "
            f"every product post with at least {metrics.CONVERSION_MIN_VIEWS} views in stock, pooled over "
            f"replicates: OLS slope (none from fewer than {metrics.MIN_SLOPE_POINTS} posts) and a 95% bootstrap "
            "interval that resamples whole replicates (the experiment's `bootstrap` random stream; none below "
            f"{metrics.MIN_REPLICATES} replicates). A positive slope: posts that start conversations sell "
            "more per view. Comments enter as the count a viewer sees; the slope is in purchases per 1,000 "
            "views per unit of log(1 + comments) (the measures table gives it per view).", ""] \
        + _md_table(["ranker", "product posts", "slope", "95% CI"], rows) + [""]


def _measures_section(summary: pa.Table | None, ctx: plots.Context, highlights: list[str],
                      focal: set[str] | None = None, constants: set[str] | None = None) -> list[str]:
    """Scenario measures (planted accounts, named sounds, products) from ``summary.parquet``:
    per ranker and sweep point, median, mean and 95% CI over replicates, the paired difference
    versus the baseline ranker and the paired relative change versus the baseline point.  The
    experiment's ``highlights`` come first, then the measures of its ``focal`` entities (the focal post's
    account, product, sound), then the rest; ``constants`` (one value in every run) are left out."""
    if summary is None or summary.num_rows == 0:
        return []
    s = summary.to_pydict()
    sweep = sorted(c for c in s if c.startswith("sweep_"))
    dropped = (constants or set()) - set(highlights)
    idx = [i for i, m in enumerate(s["metric"]) if (m.count(".") >= 2 or m in highlights) and m not in dropped]
    if not idx:
        return []

    def num(x: Any) -> float:
        return float("nan") if x is None else float(x)

    def interval(i: int, prefix: str, signed: bool = False, percent: bool = False) -> str:
        head = f"{prefix}_" if prefix else ""
        lo, hi = num(s[f"{head}ci_low"][i]), num(s[f"{head}ci_high"][i])
        mean = num(s[f"{prefix}_mean" if prefix else "mean"][i])
        if not np.isfinite(mean):
            return ""
        f = (lambda v: f"{v:+.0%}") if percent else (lambda v: f"{v:+,.3g}" if signed else f"{v:,.3g}")
        if np.isfinite(lo) and np.isfinite(hi):
            return f"{f(mean)} [{f(lo)}, {f(hi)}]"
        n = int(s["n"][i] or 0)
        return f"{f(mean)} ({_no_interval(n)})" if n < metrics.MIN_REPLICATES else f(mean)

    dropped_here = sorted({m for m in s["metric"] if m in dropped and m.count(".") >= 2})
    lines = ["## Scenario measures", "",
             "Per ranker" + (" and sweep point" if sweep else "") + ": median and mean over replicates with a "
             "95% t-interval; the paired difference versus the baseline ranker (same replicate) with a "
             "95% bootstrap interval" + ("; and the paired relative change versus the baseline sweep point"
                                          if "point_rel_mean" in s and sweep else "") +
             f"; no interval below {metrics.MIN_REPLICATES} replicates. The experiment's key metrics come first, "
             "then those of its focal post's account, product and sound."
             + (f" Left out, the same in every run: {', '.join(f'`{m}`' for m in dropped_here)}."
                if dropped_here else "") + " Metric meanings: `python -m sim schema --results`.", ""]
    header = ["measure", "ranker"] + [c.removeprefix("sweep_") for c in sweep] + ["n", "median", "mean [95% CI]",
                                                                                    "vs baseline ranker"]
    with_points = sweep and any(np.isfinite(num(s["point_rel_mean"][i])) for i in idx)
    if with_points:
        header.append("vs baseline point")
    rows = []
    first = {m: k for k, m in enumerate(highlights)}
    mine = focal or set()
    order = {label: k for k, label in enumerate(ctx.labels)}

    def rank(i: int) -> tuple[Any, ...]:
        metric = s["metric"][i]
        parts = metric.split(".")
        group = 0 if metric in first else 1 if len(parts) >= 3 and parts[1] in mine else 2
        return (group, first.get(metric, 0), metric, order.get(s["ranker"][i], len(order)), [s[c][i] for c in sweep])

    for i in sorted(idx, key=rank):
        row = [f"`{s['metric'][i]}`", str(s["ranker"][i])] + [str(s[c][i]) for c in sweep]
        row += [str(s["n"][i]), f"{num(s['median'][i]):,.3g}", interval(i, ""),
                interval(i, "diff", signed=True)]
        if with_points:
            row.append(interval(i, "point_rel", percent=True))
        rows.append(row)
    return lines + _md_table(header, rows) + [""]


def _cli_value(v: Any) -> str:
    if isinstance(v, str):
        return v if v and all(c.isalnum() or c in "._-#" for c in v) else json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --------------------------------------------------------------------------- entry points


def build(out_dir: Path) -> Path:
    """Draw every figure that applies into ``out_dir/plots`` and write ``out_dir/report.md``; return its path."""
    out_dir = Path(out_dir)
    manifest, tables = load(out_dir)
    if (out_dir / "summary.parquet").exists():
        tables["summary"] = load_table(out_dir / "summary.parquet", "summary")
    if (out_dir / "measures.parquet").exists():
        measures = load_table(out_dir / "measures.parquet", "measures").to_pydict()
        runs = tables["runs"]
        for name, values in measure_columns(list(map(str, plots.column(runs, "run_id"))), measures).items():
            runs = runs.append_column(name, pa.array(values, type=pa.float64()))
        tables["runs"] = runs
    if "summary" not in tables:  # written before summary.parquet existed: made as the runner makes it
        tables["summary"] = summary_table(tables["runs"], manifest["config"],
                                          int(manifest.get("seed", manifest["config"].get("seed", 0))))
    ctx = context(manifest, tables["runs"], out_dir / "plots")
    figures = draw(tables, ctx, manifest["config"])
    text = markdown(manifest, tables, ctx, figures, out_dir)
    path = out_dir / "report.md"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m sim.report RESULTS_FOLDER", file=sys.stderr)
        return 2
    try:
        path = build(Path(args[0]))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
