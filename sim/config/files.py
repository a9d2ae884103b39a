"""From an experiment file to runnable experiments: read the TOML, apply ``--quick`` and
``--set``, validate, check memory; resolve the sweep into one experiment per point."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.config.memory import check_memory
from sim.config.overrides import apply_overrides, quick_overrides
from sim.config.schema import ConfigError, Experiment
from sim.config.sweep import Point, sweep_points
from sim.config.validate import brief_repr, parse


def load(path: str | Path, overrides: Mapping[str, Any] | None = None, quick: bool = False) -> Experiment:
    """Read, override (``--quick`` first, then ``--set``) and validate an experiment file.

    Also refuses an experiment whose run cannot fit in this machine's memory
    (:func:`estimate_peak_bytes` against :func:`machine_memory_bytes`)."""
    return resolve(read_table(path), str(path), overrides, quick)


def resolve(table: Mapping[str, Any], source: str, overrides: Mapping[str, Any] | None = None,
            quick: bool = False) -> Experiment:
    """An experiment's TOML-shaped ``table`` with ``--quick`` and then ``overrides`` applied, validated,
    and checked against this machine's memory; errors name ``source``."""
    if quick:
        table = apply_overrides(table, quick_overrides(table), source)
    if overrides:
        table = apply_overrides(table, overrides, source)
    exp = parse(table, source)
    check_memory(exp)
    return exp


def read_table(path: str | Path) -> dict[str, Any]:
    """The TOML table of an experiment file; any failure is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not an experiment file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise ConfigError([f"{brief_repr(str(path))}: cannot read ({exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); "
                           f"save it as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: TOML nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError([f"{path}: TOML value error: {exc}"]) from None


def points(exp: Experiment) -> list[Point]:
    """The experiment's sweep points (one point, with no parameters, when there is no sweep)."""
    table: dict[str, Any] = getattr(exp, "_table", {})
    source: str = getattr(exp, "_source", "<config>")
    if not exp.sweep:
        return [Point(0, {}, exp)]
    base = {k: v for k, v in table.items() if k not in ("sweep", "quick", "baseline_point", "claims")}
    out = []
    for i, params in enumerate(sweep_points(exp.sweep)):
        point_exp = parse(apply_overrides(base, params, source), source)
        object.__setattr__(point_exp, "name", exp.name)
        out.append(Point(i, params, point_exp))
    return out
