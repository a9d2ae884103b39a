"""Build ``plots/`` and ``report.md`` from a results folder, from Python or the command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow as pa

from sim.analysis.claims import evaluate
from sim.analysis.summary import summary_table
from sim.analysis.tables import column
from sim.batch.runner import measure_columns
from sim.recording import make_table
from sim.report.folder import ReportError, context, load, load_table
from sim.report.markdown import markdown
from sim.report.selection import draw


def build(out_dir: Path) -> Path:
    """Draw every figure that applies into ``out_dir/plots`` and write ``out_dir/report.md``; return its path."""
    out_dir = Path(out_dir)
    manifest, tables = load(out_dir)
    if (out_dir / "summary.parquet").exists():
        tables["summary"] = load_table(out_dir / "summary.parquet", "summary")
    if (out_dir / "measures.parquet").exists():
        measures = load_table(out_dir / "measures.parquet", "measures").to_pydict()
        runs = tables["runs"]
        for name, values in measure_columns(list(map(str, column(runs, "run_id"))), measures).items():
            runs = runs.append_column(name, pa.array(values, type=pa.float64()))
        tables["runs"] = runs
    if "summary" not in tables:  # a folder without summary.parquet: made as the runner makes it
        tables["summary"] = summary_table(tables["runs"], manifest["config"],
                                          int(manifest.get("seed", manifest["config"].get("seed", 0))))
    tables["claims"] = _claims(out_dir, manifest, tables)
    ctx = context(manifest, tables["runs"], out_dir / "plots")
    figures = draw(tables, ctx, manifest["config"])
    text = markdown(manifest, tables, ctx, figures, out_dir)
    path = out_dir / "report.md"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _claims(out_dir: Path, manifest: dict, tables: dict[str, pa.Table]) -> pa.Table:
    """``claims.parquet``, or where a folder has none, the claims of its manifest judged as the runner
    judges them."""
    if (out_dir / "claims.parquet").exists():
        return load_table(out_dir / "claims.parquet", "claims")
    columns = evaluate(manifest["config"].get("claims") or [], tables["runs"].to_pydict(),
                       tables["summary"].to_pydict())
    return make_table("claims", columns)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.report RESULTS_FOLDER``: build the report; 2 with a message on a bad folder."""
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
