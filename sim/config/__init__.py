"""Experiment configuration: frozen dataclasses built from TOML, all validation, sweeps.

Loading collects *every* problem before failing, each named by file and key path::

    experiments/x.toml: world.users: must be >= 2 (got -5)

Modules, each importing only those above it:

- :mod:`~sim.config.schema`: the frozen dataclasses of an experiment file, :class:`ConfigError`
- :mod:`~sim.config.overrides`: ``--set`` overrides and the ``--quick`` variant of a raw table
- :mod:`~sim.config.sweep`: a ``[sweep]`` table expanded into points, :class:`Point`
- :mod:`~sim.config.validate`: a table built into an :class:`Experiment`, with every check
- :mod:`~sim.config.memory`: the peak memory one run needs, against this machine's
- :mod:`~sim.config.files`: a file read, overridden, validated and checked; its sweep points resolved

:func:`knob` and :func:`sim.params.reference` live in the leaf :mod:`sim.params`, which rankers
import too.
"""

from sim.config.files import load, points, read_table, resolve
from sim.config.memory import (
    MEMORY_BASE,
    MEMORY_MARGIN,
    MEMORY_PER_FOLLOW,
    MEMORY_PER_POST,
    MEMORY_PER_USER,
    MEMORY_PER_USER_DAY,
    check_memory,
    estimate_peak_bytes,
    format_bytes,
    machine_memory_bytes,
)
from sim.config.overrides import apply_overrides, parse_value, quick_overrides
from sim.config.schema import (
    DAY,
    DEFAULT_DIURNAL,
    DEFAULT_TOPIC_NAMES,
    BehaviorConfig,
    Claim,
    ConfigError,
    Experiment,
    PlantedAccount,
    PostEvent,
    Product,
    RankerSpec,
    RecordingConfig,
    WorldConfig,
    default_label,
    overrides_of,
    reference,
    to_dict,
)
from sim.config.sweep import MAX_SWEEP_POINTS, Point, sweep_points
from sim.config.validate import (
    CONTROL_CHARACTERS,
    INT64_MAX,
    SAFE_NAME,
    SAFE_NAME_RULE,
    build,
    name_problem,
    parse,
    parse_variant,
)
from sim.params import knob

__all__ = [
    "CONTROL_CHARACTERS", "DAY", "DEFAULT_DIURNAL", "DEFAULT_TOPIC_NAMES", "INT64_MAX", "MAX_SWEEP_POINTS",
    "MEMORY_BASE", "MEMORY_MARGIN", "MEMORY_PER_FOLLOW", "MEMORY_PER_POST", "MEMORY_PER_USER",
    "MEMORY_PER_USER_DAY", "SAFE_NAME", "SAFE_NAME_RULE", "BehaviorConfig", "Claim", "ConfigError", "Experiment",
    "PlantedAccount", "Point", "PostEvent", "Product", "RankerSpec", "RecordingConfig", "WorldConfig",
    "apply_overrides", "build", "check_memory", "default_label", "estimate_peak_bytes", "format_bytes", "knob",
    "load", "machine_memory_bytes", "name_problem", "overrides_of", "parse", "parse_value", "parse_variant",
    "points", "quick_overrides", "read_table", "resolve", "reference", "sweep_points", "to_dict",
]  # fmt: skip
