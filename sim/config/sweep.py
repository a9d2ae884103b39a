"""Sweeps: a ``[sweep]`` table expanded into points, and :class:`Point`.

A sweep varies dotted keys of the experiment file: ``[sweep]`` lists are a grid (every
combination), ``[sweep.zip]`` lists of equal length vary together.  Resolving each point into
its own validated experiment is :func:`sim.config.points`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.config.schema import ConfigError, Experiment

MAX_SWEEP_POINTS = 10_000  # the most points a [sweep] may expand to; each runs every ranker and replicate


def sweep_points(sweep: Mapping[str, Any], where: str = "sweep") -> list[dict[str, Any]]:
    """Expand a ``[sweep]`` table into points: the product of every grid list, times the
    ``zip`` lists taken together.

    >>> sweep_points({"a": [1, 2], "zip": {"b": [3, 4], "c": [5, 6]}})
    [{'a': 1, 'b': 3, 'c': 5}, {'a': 1, 'b': 4, 'c': 6}, {'a': 2, 'b': 3, 'c': 5}, {'a': 2, 'b': 4, 'c': 6}]
    """
    problems = []
    axes: list[list[dict[str, Any]]] = []
    for key, values in sweep.items():
        if key == "zip":
            if not isinstance(values, Mapping) or not values:
                problems.append(f"{where}.zip: expected a table of equal-length lists")
                continue
            lengths = {len(v) if isinstance(v, list) else -1 for v in values.values()}
            if len(lengths) != 1 or -1 in lengths or 0 in lengths:
                problems.append(f"{where}.zip: expected non-empty lists of equal length")
                continue
            axes.append([dict(zip(values, combo, strict=True)) for combo in zip(*values.values(), strict=True)])
        elif not isinstance(values, list) or not values:
            problems.append(f"{where}.{key}: expected a non-empty list of values")
        else:
            axes.append([{key: v} for v in values])
    if not problems and math.prod(len(axis) for axis in axes) > MAX_SWEEP_POINTS:
        problems.append(f"{where}: {math.prod(len(axis) for axis in axes):,} points (the product of the grid "
                        f"lists) exceed {MAX_SWEEP_POINTS:,}")
    if problems:
        raise ConfigError(problems)
    points: list[dict[str, Any]] = [{}]
    for axis in axes:
        points = [{**p, **q} for p in points for q in axis]
    return points


@dataclass(frozen=True)
class Point:
    """One sweep point: its parameters (dotted key -> value) and the experiment it resolves to."""

    index: int
    params: dict[str, Any]
    exp: Experiment

