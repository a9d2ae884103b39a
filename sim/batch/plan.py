"""The plan of a batch: which runs an experiment makes, what each is called, and the hash that says
whether a results folder holds this configuration."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.config import Experiment, Point, to_dict
from sim.rankers.base import RANKERS, resolve_ranker


class RunnerError(RuntimeError):
    """A problem with the results folder or the requested runs."""


@dataclass(frozen=True)
class RunKey:
    """One run: a sweep point, a ranker (by position in the file) and a replicate."""

    point: int
    ranker: int
    replicate: int

    def run_id(self, pts: list[Point]) -> str:
        """The run's folder name: ``<ranker label>[-p<point>]-r<replicate>`` (the point only in a sweep)."""
        spec = pts[self.point].exp.rankers[self.ranker]
        point = f"-p{self.point}" if len(pts) > 1 else ""
        return f"{spec.label or spec.name}{point}-r{self.replicate}"


#: Experiment fields that do not change what any one run is, so changing them does not make a
#: results folder hold a different configuration (the manifest takes the file's current ones): how
#: results are presented, and how many replicates there are (a replicate's random streams depend on
#: the seed and its index alone, so raising ``replicates`` adds runs and keeps the finished ones), and
#: the claims judged on the runs.
NOT_HASHED = ("highlights", "description", "replicates", "claims")


def config_hash(exp: Experiment) -> str:
    """16 hex digits of the SHA-256 of the configuration as resolved, without :data:`NOT_HASHED`,
    and of the source file of every ranker that is not built in (``module:Class`` or an installed
    entry point): editing your own ranker makes a different configuration, so a resume never mixes
    runs of its old and new code.  (feedsim's own code is named by the git revision in the manifest.)"""
    config = {k: v for k, v in to_dict(exp).items() if k not in NOT_HASHED}
    sources = {spec.name: _source_digest(spec.name) for spec in exp.rankers if spec.name not in RANKERS}
    if sources:
        config["ranker_sources"] = sources
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_digest(name: str) -> str:
    """SHA-256 of the file that defines the ranker ``name`` (its class's module), or of the class's
    qualified name where no source file can be found (a compiled extension)."""
    cls = resolve_ranker(name)
    try:
        path = inspect.getsourcefile(cls)
        data = Path(path).read_bytes() if path else None
    except (OSError, TypeError):
        data = None
    return hashlib.sha256(data if data is not None else f"{cls.__module__}.{cls.__qualname__}".encode()).hexdigest()


def plan(pts: list[Point], only: dict[str, str] | None = None) -> list[RunKey]:
    """Every point x ranker x replicate (replicate-major), filtered by ``--only``.

    Raises
    ------
    RunnerError
        ``only`` names a key other than ``ranker``, ``replicate`` and ``point``, or matches no run.
    """
    exp = pts[0].exp
    keys = [RunKey(p.index, r, rep) for rep in range(exp.replicates) for p in pts
            for r in range(len(exp.rankers))]
    if not only:
        return keys
    unknown = set(only) - {"ranker", "replicate", "point"}
    if unknown:
        raise RunnerError(f"--only: unknown key(s) {', '.join(sorted(unknown))} (known: ranker, replicate, point)")
    out = []
    for k in keys:
        spec = exp.rankers[k.ranker]
        if "ranker" in only and only["ranker"] != (spec.label or spec.name):
            continue
        if "replicate" in only and only["replicate"] != str(k.replicate):
            continue
        if "point" in only and only["point"] != str(k.point):
            continue
        out.append(k)
    if not out:
        raise RunnerError(f"--only {only}: matches no run")
    return out


def sweep_columns(params: dict[str, Any]) -> dict[str, Any]:
    """Result columns of a sweep point: ``sweep_<key, runs of other characters than letters and
    digits as one underscore>`` (``world.accounts[0].bought_followers`` ->
    ``sweep_world_accounts_0_bought_followers``)."""
    return {"sweep_" + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_"): value for key, value in params.items()}
