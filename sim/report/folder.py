"""Reading a results folder: its manifest, its Parquet tables, and the figures' :class:`Context`.

Reads only the folder's Parquet tables and ``manifest.json`` (never re-runs a
simulation).  A missing or unreadable table raises :class:`ReportError` naming
the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.analysis.tables import column
from sim.recording import SCHEMAS, schema
from sim.report.figures.style import Context

REQUIRED = ("runs", "focal", "posts", "promotions", "timeseries")
#: Columns that folders from older revisions lack: they still report, with nulls there.
OPTIONAL_COLUMNS = {("posts", "product"), ("posts", "format"), ("posts", "views_in_stock")}


class ReportError(RuntimeError):
    """A results folder cannot be reported on; the message starts with the offending path."""


def load_manifest(out_dir: Path) -> dict[str, Any]:
    """``out_dir/manifest.json`` as a dict with a 'config' object."""
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
    for name in [m for m in missing if (table, m) in OPTIONAL_COLUMNS]:
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
    """The manifest and the :data:`REQUIRED` tables (and sampled impressions, if any) of a folder."""
    manifest = load_manifest(out_dir)
    tables = {name: load_table(out_dir / f"{name}.parquet", name) for name in REQUIRED}
    imp = load_impressions(out_dir / "impressions")
    if imp is not None:
        tables["impressions"] = imp
    return manifest, tables


def was_quick(manifest: dict[str, Any], out_dir: Path | None = None) -> bool | None:
    """Whether the folder was made with ``--quick``: the manifest's ``quick`` key; for folders that do
    not record it, a folder named ``<experiment>-quick`` (the default for --quick) counts as quick, else
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


def context(manifest: dict[str, Any], runs: pa.Table, plots_dir: Path) -> Context:
    """The figures' :class:`Context` of a folder: rankers in the file's order, baseline, focal post, scale."""
    config = manifest["config"]
    labels = tuple(str(r.get("label") or r.get("name")) for r in config.get("rankers", []))
    present = [str(r) for r in column(runs, "ranker")] if runs.num_rows else []
    labels = labels + tuple(sorted(set(present) - set(labels)))
    reps = set(column(runs, "replicate").tolist()) if runs.num_rows else set()
    replicates = len(reps) if reps else int(config.get("replicates", 0))
    events = config.get("events") or []
    focal = config.get("focal") or (events[0].get("name", "") if events else "")
    baseline = config.get("baseline") or ""
    if baseline not in labels:
        baseline = labels[-1] if labels else ""
    return Context(experiment=str(manifest.get("experiment") or config.get("name") or "experiment"),
                   seed=int(manifest.get("seed", config.get("seed", 0))), replicates=replicates,
                   labels=labels, plots_dir=plots_dir, baseline=baseline, focal=str(focal),
                   git_revision=manifest.get("git_revision"), users=_int_or_none(config.get("world", {}).get("users")),
                   days=_float_or_none(config.get("horizon_days")), quick=was_quick(manifest, plots_dir.parent),
                   pool_sizes=pool_sizes(config))


def _int_or_none(x: Any) -> int | None:
    return int(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _float_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None
