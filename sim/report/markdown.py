"""``report.md``: setup, headline numbers, paired differences, scenario measures, figures, how to reproduce."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.analysis import metrics
from sim.analysis.summary import paired_differences, pooled_conversion_slope, summary_rows
from sim.analysis.tables import (
    HEADLINE_METRICS,
    Summary,
    as_float,
    column,
    constant_metrics,
    runs_only,
)
from sim.report.claims import claims_section
from sim.report.figures.style import Context
from sim.report.formatting import changes_text, fmt_metric, fmt_pct, md_table, no_interval
from sim.report.measures import measures_section
from sim.report.selection import reference_point, reference_values


def markdown(manifest: dict[str, Any], tables: dict[str, pa.Table], ctx: Context,
             figures: list[tuple[str, str, str]], out_dir: Path | None = None) -> str:
    """The report's text: ``figures`` are (file stem, title, caption) as :func:`sim.report.selection.draw`
    returns them; the first figure's title is the report's headline."""
    config = manifest["config"]
    runs = tables["runs"]
    name = ctx.experiment
    lines = [f"# {name}", ""] + _description(config, ctx, name)
    if figures:
        lines += ["**Headline:** " + figures[0][1] + ".", ""]
    claims = tables.get("claims")
    lines += claims_section(claims.to_pydict() if claims is not None else None)

    lines += ["## Setup", ""] + md_table(["", ""], _setup_rows(manifest, ctx, runs)) + [""]

    reference = reference_point(runs, config)
    at_point = reference[1] if reference is not None else ""
    if reference is not None:
        runs = runs_only(runs, reference[0])
    summary = summary_rows(tables.get("summary"), reference_values(tables["runs"], config))
    labels = ctx.ordered(list(map(str, column(runs, "ranker"))))
    lines += _headline_numbers(runs, summary, labels, at_point)
    lines += _paired_section(runs, summary, labels, ctx.baseline, at_point)
    lines += measures_section(tables.get("summary"), ctx, list(config.get("highlights") or []),
                              _focal_entities(config), constant_metrics(tables["runs"]))
    lines += _conversion_section(tables["posts"], ctx)

    lines += ["## Figures", "",
              "Each figure is in `plots/` as PNG (200 dpi, 16:9) and SVG; its headline is computed from the data. "
              "Colours: " + ", ".join(f"{lb} {ctx.color(lb)}" for lb in labels) + ".", ""]
    for stem, title, caption in figures:
        lines += [f"### {title}", "", f"![{title}](plots/{stem}.png)", "", caption, ""]

    lines += _reproduce(manifest, ctx, out_dir)
    if manifest.get("git_revision"):
        lines += [f"Code revision: `{manifest['git_revision']}`{_changes(manifest)}.", ""]
    lines += ["---", "", f"*feedsim · experiment '{name}' · {ctx.scale()} · seed {ctx.seed}*", ""]
    return "\n".join(lines)


def _headline_numbers(runs: pa.Table, summary: Summary, labels: list[str], at_point: str) -> list[str]:
    """Each headline metric per ranker: mean with its 95% interval from the summary."""
    ranker_col = column(runs, "ranker")
    lines = ["## Headline numbers", "",
             "Mean over replicates with a 95% t-interval in brackets, as in `summary.parquet` (shares and "
             "other bounded quantities: the interval cut to the range the value can take); none: no run had "
             f"a value (e.g. no sell-out); no interval below {metrics.MIN_REPLICATES} replicates." + at_point, ""]
    rows = []
    for metric, label, kind in HEADLINE_METRICS:
        if metric not in runs.column_names:
            continue
        rows.append([label] + [_ci_cell(summary.get((lb, metric)), kind, int((ranker_col == lb).sum()))
                               for lb in labels])
    return lines + md_table(["Metric"] + labels, rows) + [""]


def _ci_cell(row: dict[str, Any] | None, kind: str, runs_total: int) -> str:
    """A headline cell from a summary row: mean [95% CI], or the mean and why there is no interval."""
    if row is None or not runs_total:
        return "n/a"
    n = int(row.get("n") or 0)
    if n == 0:
        return "none"
    mean, lo, hi = as_float(row.get("mean")), as_float(row.get("ci_low")), as_float(row.get("ci_high"))
    cell = fmt_metric(mean, kind)
    if np.isfinite(lo) and np.isfinite(hi):
        cell += f" [{fmt_metric(lo, kind)}, {fmt_metric(hi, kind)}]"
    elif n < metrics.MIN_REPLICATES:
        cell += f" ({no_interval(n)})"
    if n < runs_total:
        cell += f" ({n} of {runs_total} runs)"
    return cell


def _paired_section(runs: pa.Table, summary: Summary, labels: list[str], baseline: str, at_point: str) -> list[str]:
    """Each headline metric's paired difference per ranker versus the baseline, from the summary."""
    others = [lb for lb in labels if lb != baseline]
    if not others or baseline not in labels:
        return []
    diffs = paired_differences(runs, labels, baseline, summary)
    lines = [f"### Paired differences versus {baseline}", "",
             "Ranker minus baseline per replicate; mean and 95% percentile bootstrap interval from "
             "`summary.parquet` (2,000 resamples, the experiment's `bootstrap` random stream); shares in "
             f"percentage points; no interval below {metrics.MIN_REPLICATES} pairs." + at_point, ""]
    rows = []
    for metric, label, kind in HEADLINE_METRICS:
        cells = [_difference_cell(next((r for r in diffs if r["ranker"] == lb and r["metric"] == metric), None), kind)
                 for lb in others]
        if any(r["metric"] == metric for r in diffs):
            rows.append([label] + cells)
    return lines + md_table(["Metric"] + [f"{lb} − {baseline}" for lb in others], rows) + [""]


def _difference_cell(r: dict[str, Any] | None, kind: str) -> str:
    """A paired-difference cell: mean [95% CI] (n=pairs), or why there is none."""
    if r is None:
        return "n/a"
    if r["n"] == 0:
        return "n/a (no paired values)"
    cell = fmt_metric(r["mean"], kind, signed=True)
    if np.isfinite(r["lo"]) and np.isfinite(r["hi"]):
        return cell + (f" [{fmt_metric(r['lo'], kind, signed=True)}, "
                       f"{fmt_metric(r['hi'], kind, signed=True)}] (n={r['n']})")
    return cell + f" ({no_interval(r['n'])})"


def _setup_rows(manifest: dict[str, Any], ctx: Context, runs: pa.Table) -> list[list[str]]:
    """The setup table: world, time, replicates, rankers, seed, planted entities, overrides, compute."""
    config = manifest["config"]
    world = config.get("world", {})
    rows = [["Users", f"{world.get('users', 'n/a'):,}" if isinstance(world.get("users"), int) else "n/a"],
            ["Simulated time", f"{config.get('horizon_days', 'n/a')} days after a "
                               f"{config.get('warmup_hours', 'n/a')} h warm-up"],
            ["Replicates", f"{config.get('replicates', 'n/a')} per ranker ({runs.num_rows} runs in the tables; "
                           "rankers of one replicate share the world and arrivals)"],
            ["Rankers", "; ".join(_ranker_text(r, ctx.baseline) for r in config.get("rankers", [])) or "n/a"],
            ["Seed", str(ctx.seed)]]
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
        rows.append(["Impressions sampled", fmt_pct(float(rate))])
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
        rows.append(["Git revision", f"`{manifest['git_revision']}`{_changes(manifest)}"])
    return rows


def _changes(manifest: dict[str, Any]) -> str:
    """" with uncommitted changes to `a.toml`" where the batch ran from an edited checkout."""
    return changes_text(manifest.get("git_changes") or [])


def _ranker_text(ranker: dict[str, Any], baseline: str) -> str:
    """'content (`content`) with `explore_share=0.2` — baseline': a ranker as the setup table names it."""
    label = ranker.get("label") or ranker.get("name")
    text = f"{label}" + (f" (`{ranker.get('name')}`)"
                         if ranker.get("label") and ranker.get("label") != ranker.get("name") else "")
    tuned = _tuned_params(str(ranker.get("name")), ranker.get("params") or {})
    if tuned:
        text += " with " + ", ".join(f"`{k}={v}`" for k, v in tuned.items())
    if label == baseline:
        text += " — baseline"
    return text


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
    """Behaviour settings that differ from the calibrated defaults, with the default."""
    try:
        from sim.config import BehaviorConfig
    except ImportError:  # pragma: no cover
        return ""
    base = BehaviorConfig()
    diffs = [f"`{f.name}={behavior[f.name]}` (default {getattr(base, f.name)})"
             for f in dataclasses.fields(BehaviorConfig)
             if f.name in behavior and behavior[f.name] != getattr(base, f.name)]
    return ", ".join(diffs)


def _description(config: dict[str, Any], ctx: Context, name: str) -> list[str]:
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


def _reproduce(manifest: dict[str, Any], ctx: Context, out_dir: Path | None) -> list[str]:
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


def _cli_value(v: Any) -> str:
    if isinstance(v, str):
        return v if v and all(c.isalnum() or c in "._-#" for c in v) else json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _focal_entities(config: dict[str, Any]) -> set[str]:
    """Names the experiment is about: its focal event, that event's account, product and sound."""
    events = config.get("events") or []
    focal = config.get("focal") or (events[0].get("name", "") if events else "")
    event: dict[str, Any] = next((e for e in events if e.get("name") == focal), {})
    return {str(v) for v in (focal, event.get("account"), event.get("product"), event.get("sound")) if v}


def _conversion_section(posts: pa.Table, ctx: Context) -> list[str]:
    """Conversion against comments per ranker (and sweep point): pooled slope with its interval."""
    if "product" not in posts.column_names or posts.column("product").null_count == posts.num_rows:
        return []
    # In a sweep each point is its own population: one row per ranker and point, in sweep order.
    sweeps = sorted(c for c in posts.column_names if c.startswith("sweep_"))
    columns = [column(posts, c).tolist() for c in sweeps]
    points = list(dict.fromkeys(zip(*columns, strict=True))) if sweeps else [()]
    rows = []
    for label in ctx.ordered(list(map(str, column(posts, "ranker")))):
        for values in points:
            at = posts
            for c, v in zip(sweeps, values, strict=True):
                at = at.filter(pc.equal(at[c], v))
            slope, lo, hi, n = pooled_conversion_slope(at, label, ctx.seed)
            if not n:
                continue
            name = label + "".join(f", {c.removeprefix('sweep_')} = {v}" for c, v in zip(sweeps, values, strict=True))
            reps = len(set(column(at, "replicate")[column(at, "ranker") == label].tolist()))
            if not np.isfinite(slope):
                rows.append([name, str(n), f"too few posts (fewer than {metrics.MIN_SLOPE_POINTS})", "n/a"])
            else:
                rows.append([name, str(n), f"{1000 * slope:+.3f}", f"[{1000 * lo:+.3f}, {1000 * hi:+.3f}]"
                             if np.isfinite(lo) else no_interval(reps)])
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
        + md_table(["ranker", "product posts", "slope", "95% CI"], rows) + [""]
