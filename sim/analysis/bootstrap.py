"""The one bootstrap: the seeded resampling behind every paired difference's interval.

``summary.parquet`` (:func:`sim.batch.combine.write_summary`) and the report draw their resamples
from the same generator, the experiment's named ``bootstrap`` stream (:mod:`sim.model.rng`), so
the two print the same intervals.
"""

from __future__ import annotations

import numpy as np

from sim.model.rng import streams

#: Fewer replicates than this give no interval (t or bootstrap): with 2-4 values an interval says more
#: about the resampling than about the world.  Summaries store null there; reports say "no interval".
MIN_REPLICATES = 5

#: Resamples per interval.
N_RESAMPLES = 2000


def generator(seed: int) -> np.random.Generator:
    """The bootstrap's generator for an experiment with base seed ``seed``: its named ``bootstrap``
    stream (replicate 0's, since the bootstrap resamples across replicates)."""
    return streams(seed, 0)["bootstrap"]


def bootstrap_ci(diff: np.ndarray, rng: np.random.Generator, n_boot: int = N_RESAMPLES,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its percentile bootstrap CI.

    A percentile interval of a mean lies between the smallest and largest value, so bounds the
    values obey hold for it.

    Parameters
    ----------
    diff : ndarray, shape (n_pairs,)
        One difference per replicate pair; non-finite values are dropped.
    rng : numpy.random.Generator
        The resampling stream (:func:`generator`); it advances whenever any value is finite,
        interval or not, so that whether one cell has an interval never shifts the next cell's resamples.
    n_boot : int
        Resamples.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    (mean, low, high) : tuple of float
        nan bounds below :data:`MIN_REPLICATES` finite values; all nan when none is finite.
    """
    x = np.asarray(diff, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    if len(x) < MIN_REPLICATES:  # drawn all the same: the next cell's resamples do not depend on this n
        return float(x.mean()), float("nan"), float("nan")
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(x.mean()), float(lo), float(hi)
