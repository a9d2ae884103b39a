"""Edits to an experiment's raw TOML table: ``--set`` overrides and the ``--quick`` variant.

These work on the table before validation, so that an override is checked exactly like a value
written in the file.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

from sim.config.schema import ConfigError, Experiment, WorldConfig, default_label


def apply_overrides(table: Mapping[str, Any], overrides: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Apply ``--set a.b=value`` overrides.

    ``rankers.<label>.k`` addresses a ranker's params; ``name[i]`` addresses the
    i-th table of a list (``world.accounts[0].bought_followers``) and ``name[*]`` every one
    (``world.accounts[*].bought_followers``).
    """
    out: dict[str, Any] = copy.deepcopy(dict(table))
    for dotted, value in overrides.items():
        for key in _expand(out, dotted, dotted, source):
            _set(out, key, value, dotted, source)
    return out


def _expand(table: dict[str, Any], dotted: str, given: str, source: str) -> list[str]:
    """``dotted`` with its first ``name[*]`` replaced by each index of the list ``name``, recursively."""
    head, star, rest = dotted.partition("[*]")
    if not star:
        return [dotted]
    *path, name = head.split(".")
    node = table
    for part in path:
        node = _child(node, part, given, source)
    items = node.get(name)
    if not isinstance(items, list) or not items:
        raise ConfigError([f"{source}: --set {given}: {name}[*]: {name} is not a non-empty list of tables"])
    return [key for i in range(len(items)) for key in _expand(table, f"{head}[{i}]{rest}", given, source)]


def _set(out: dict[str, Any], dotted: str, value: Any, given: str, source: str) -> None:
    """Set one dotted key (no ``[*]``) of ``out`` to ``value``; errors name the key as ``given``."""
    parts = dotted.split(".")
    if parts[0] == "rankers" and len(parts) >= 3:
        rankers = out.get("rankers")
        tables = [r for r in rankers if isinstance(r, dict)] if isinstance(rankers, list) else []
        matches = [r for r in tables if _label_of(r) == parts[1]]
        if not matches:
            raise ConfigError([f"{source}: --set {given}: no ranker labelled {parts[1]!r}"])
        node = matches[0].setdefault("params", {})
        if not isinstance(node, dict):
            raise ConfigError([f"{source}: --set {given}: rankers {parts[1]!r}: params is not a table"])
        parts = parts[2:]
    else:
        node = out
    for part in parts[:-1]:
        node = _child(node, part, given, source)
    node[parts[-1]] = value


def _label_of(ranker: Mapping[str, Any]) -> Any:
    """The label a raw ``[[rankers]]`` table will get (its own, else :func:`default_label`)."""
    name = ranker.get("name")
    return ranker.get("label") or (default_label(name) if isinstance(name, str) else name)


def _child(node: dict[str, Any], part: str, dotted: str, source: str) -> dict[str, Any]:
    """The table under key ``part`` (``name`` or ``name[i]``) of ``node``, created if missing."""
    name, bracket, rest = part.partition("[")
    if not bracket:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError([f"{source}: --set {dotted}: {part} is not a table"])
        return child
    items = node.get(name)
    index = rest.removesuffix("]")
    if not index.isdigit() or not isinstance(items, list) or int(index) >= len(items):
        size = len(items) if isinstance(items, list) else 0
        raise ConfigError([f"{source}: --set {dotted}: {part}: no such entry ({name} has {size})"])
    child = items[int(index)]
    if not isinstance(child, dict):
        raise ConfigError([f"{source}: --set {dotted}: {part} is not a table"])
    return child


def parse_value(text: str) -> Any:
    """Parse the value of ``--set key=value`` as a TOML value (bare words are strings)."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return text
    return parsed["v"] if len(parsed) == 1 else text  # "1\nseed = 2" is one string, not two keys


def quick_overrides(table: Mapping[str, Any]) -> dict[str, Any]:
    """What ``--quick`` changes: the file's ``[quick]`` table, else a generic small variant
    (at most 50,000 users, 2 replicates, at most 1 simulated day)."""
    quick = table.get("quick")
    if quick and isinstance(quick, Mapping):
        return dict(quick)
    world = table.get("world") or {}
    users = world.get("users", WorldConfig.users) if isinstance(world, Mapping) else WorldConfig.users
    out: dict[str, Any] = {"replicates": 2}
    if isinstance(users, int) and users > 50_000:
        out["world.users"] = 50_000
    horizon = table.get("horizon_days", Experiment.horizon_days)
    if isinstance(horizon, int | float) and horizon > 1:
        out["horizon_days"] = 1.0
    return out

