"""feedsim: a discrete-event simulator of a short-video platform.

Compares a content-graph ranker (For You: interest retrieval plus staged
traffic pools) with a follower-graph ranker, on a SimPy clock.

The Python API (:mod:`sim.api`)::

    import sim

    results = sim.run("experiments/trinidad.toml", quick=True)
    results.table("runs")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sim.api import Results, ResultsError, RunsFailed, load, run

__all__ = ["Results", "ResultsError", "RunsFailed", "load", "run"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import sim.config` (and every run's worker process) stays light.
    if name in __all__:
        from sim import api

        return getattr(api, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
