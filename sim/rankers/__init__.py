"""Rankers: the batched contract in :mod:`sim.rankers.base`, and the registry."""

from sim.rankers import baselines, content, follower, hybrid  # noqa: F401  (registers the rankers)
from sim.rankers.base import (
    CHANNEL_NAMES,
    RANKERS,
    Feedback,
    PoolDecisions,
    Ranker,
    Slate,
    register,
    resolve_ranker,
)  # fmt: skip

__all__ = ["CHANNEL_NAMES", "RANKERS", "Feedback", "PoolDecisions", "Ranker", "Slate", "register",
           "resolve_ranker"]
