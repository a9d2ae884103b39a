"""One run: simulate it and write its folder atomically.

Every executor (:mod:`sim.batch.executors`) calls the same function, :func:`execute_safely`, so the
tables are byte-identical whichever runs them; they differ only in where the runs go.
"""

from __future__ import annotations

import json
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from sim.batch.folder import checksums, write_parquet
from sim.batch.plan import RunKey, sweep_columns
from sim.config import Point, RankerSpec
from sim.recording import sweep_field


@dataclass
class RunOutcome:
    """What a run reports to the driver: its impressions and wall-clock seconds, or why it failed."""

    run_id: str
    impressions: int = 0
    wall_s: float = 0.0
    error: str | None = None


Job = tuple[Point, RunKey, Path, str, str]
"""The arguments of :func:`execute_safely` for one run: point, key, run folder, run id, config hash."""


def execute(point: Point, key: RunKey, run_dir: Path, run_id: str, digest: str = "",
            stop: Callable[[], bool] | None = None) -> RunOutcome:
    """Run one simulation and write its tables to ``run_dir`` atomically.

    ``digest`` is the batch's configuration hash; ``run.json`` records it beside a checksum of
    every file, so that a resume keeps the run only for this configuration and only intact
    (:func:`sim.batch.folder.verify_run`).  ``stop``: see :meth:`sim.engine.Simulation.run`."""
    from sim.engine import Simulation

    spec: RankerSpec = point.exp.rankers[key.ranker]
    sim = Simulation(point.exp, spec, key.replicate, run_id=run_id)
    recorder = sim.run(stop)
    tmp = run_dir.with_name(run_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    extra = sweep_columns(point.params)
    for name, table in recorder.tables.items():
        for column, value in extra.items():
            values = pa.array([value] * table.num_rows, type=pa.array([value]).type)
            table = table.append_column(sweep_field(column, values.type), values)
        write_parquet(table, tmp / f"{name}.parquet")
    (tmp / "run.json").write_text(json.dumps({"run_id": run_id, "impressions": sim.impressions,
                                              "wall_s": sim.wall_s, "config_hash": digest,
                                              "files": checksums(tmp)}))
    if run_dir.exists():  # left by a batch killed outright after its rename: it is redone, so replaced
        shutil.rmtree(run_dir)
    os.replace(tmp, run_dir)
    return RunOutcome(run_id, sim.impressions, sim.wall_s)


def where(point: Point, key: RunKey) -> str:
    """The run in words, for an error: its ranker, replicate and sweep point."""
    spec = point.exp.rankers[key.ranker]
    text = f"ranker {spec.label or spec.name} ({spec.name}), replicate {key.replicate}"
    if point.params:
        text += f", sweep point {point.index} {point.params}"
    return text


def execute_safely(point: Point, key: RunKey, run_dir: Path, run_id: str, digest: str = "",
                   stop: Callable[[], bool] | None = None) -> RunOutcome:
    """:func:`execute`, with any failure of the run returned as its outcome's ``error``: a stopped
    batch's unstarted or unfinished run, or whatever a user's ranker raised (with a traceback)."""
    from sim.engine import RunStopped

    if stop is not None and stop():  # queued behind the runs in flight when the batch was stopped
        return RunOutcome(run_id, error="not started: the batch was stopped")
    try:
        return execute(point, key, run_dir, run_id, digest, stop)
    except RunStopped as exc:
        return RunOutcome(run_id, error=f"not finished: {exc}")
    except Exception:  # a user's ranker may raise anything; report it with its run and parameters
        return RunOutcome(run_id, error=f"{where(point, key)}\n{traceback.format_exc()}")
