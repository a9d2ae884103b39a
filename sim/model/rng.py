"""The only place seeds are made.

Every replicate of an experiment derives named, independent streams from one
``numpy.random.SeedSequence`` built from the experiment's seed.  All rankers
(and sweep points) of one replicate get the *same* streams, so their runs share
the world, the session arrivals and the scenario events: comparisons between
rankers are paired (common random numbers).
"""

from __future__ import annotations

import numpy as np

#: Stream names, in a fixed order: the order is part of the seed contract.
STREAMS = ("world", "arrivals", "posting", "behavior", "ranker", "recording", "bootstrap", "bench")


def stream_seed(seed: int, replicate: int, name: str) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream ``name`` (one of :data:`STREAMS`) for replicate ``replicate``.

    Raises
    ------
    KeyError
        ``name`` is not a known stream.
    """
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r} (known: {', '.join(STREAMS)})")
    return np.random.SeedSequence(entropy=seed, spawn_key=(replicate, STREAMS.index(name)))


def streams(seed: int, replicate: int) -> dict[str, np.random.Generator]:
    """One fresh ``Generator`` per named stream for a replicate: stream name -> Generator.

    Examples
    --------
    >>> a = streams(7, 0)["world"].integers(1000)
    >>> b = streams(7, 0)["world"].integers(1000)
    >>> bool(a == b)
    True
    """
    return {name: np.random.Generator(np.random.PCG64(stream_seed(seed, replicate, name))) for name in STREAMS}
