"""The memory one run needs: a linear estimate of its peak resident memory, checked against
this machine's before a run starts."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from sim.config.overrides import apply_overrides
from sim.config.schema import BehaviorConfig, ConfigError, Experiment, WorldConfig
from sim.config.sweep import Point, sweep_points
from sim.config.validate import parse_variant

# Peak resident memory of one run (one process).  Measured: the engine run in a child process
# (load + Simulation(exp, exp.rankers[0], 0).run() + its Parquet tables), then the child's
# resource.getrusage(RUSAGE_SELF).ru_maxrss, on experiments/calibration.toml (12 h warm-up, so
# days = horizon_days + 0.5, content ranker), e.g.
#   .venv/bin/python -c 'import resource; from sim.config import load; from sim.engine import Simulation
#   exp = load("experiments/calibration.toml", {"world.users": 5000, "horizon_days": 4})
#   Simulation(exp, exp.rankers[0], 0).run(); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)'
#   users    horizon_days  other                     peak RSS
#   2        0.001         warmup_hours=0            316 MiB  (libraries: numpy, numba, pyarrow, simpy)
#   5,000    0.25 / 4      (engine of commit d271e9a) 348 / 353 MiB
#   20,000   0.25          world.follows_mean=200    394 MiB, 378 MiB without  (+5.3M follow edges)
#   20,000   0.25          world.posting_rate_mean=5 433 MiB  (72,480 posts instead of 649)
#   400,000  5             trinidad.toml             1.5 GB   (README: GNU time, whole batch)
#   2,000,000 5            trinidad_scale.toml       6.2 GB   (docs/performance.md)
# Fit: 330 MiB + 1,000 B per user + 350 B per user-day (the seen-post filter, 12 bits per
# expected view, and the daily watch arrays) + 3.2 B per extra follow edge + 800 B per post;
# times MEMORY_MARGIN it lies 0-25% above every row (trinidad: 16% and 22%).
MEMORY_BASE = 330 * 2**20
MEMORY_PER_USER = 1_000
MEMORY_PER_FOLLOW = 3.2  # each follow edge beyond the default's
MEMORY_PER_USER_DAY = 350  # at the default attention and activity
MEMORY_PER_POST = 800
MEMORY_MARGIN = 1.1  # allocator slack and the spread between worlds drawn from different seeds


def estimate_peak_bytes(exp: Experiment) -> int:
    """An upper estimate of one run's peak resident memory in bytes.

    Linear in the world's size: users (with bought followers), follow edges, user-days of
    activity (scaled by how many posts a user-day watches) and posts made.  A batch of ``jobs``
    concurrent runs needs about ``jobs`` times this.

    >>> from sim.config import parse
    >>> exp = parse({"world": {"users": 100_000}, "horizon_days": 0.25, "rankers": [{"name": "content"}]}, "x")
    >>> format_bytes(estimate_peak_bytes(exp))
    '498 MiB'
    """
    world, behavior = exp.world, exp.behavior
    days = exp.horizon_days + exp.warmup_hours / 24
    users = float(world.users)
    nodes = users + sum(float(a.bought_followers) for a in world.accounts)
    extra_follows = max(0.0, world.follows_mean * math.exp(world.follows_sigma**2 / 2) - _DEFAULT_FOLLOWS) * users
    views_scale = _views_per_active_second(world, behavior) / _views_per_active_second(WorldConfig(), BehaviorConfig())
    activity = world.daily_active_share * world.attention_mean_minutes
    default_activity = WorldConfig.daily_active_share * WorldConfig.attention_mean_minutes
    user_days = users * days * max(1.0, views_scale * activity / default_activity)
    posts = users * days * world.posting_rate_mean + sum(a.posting_rate * days for a in world.accounts)
    peak = (MEMORY_BASE + nodes * MEMORY_PER_USER + extra_follows * MEMORY_PER_FOLLOW
            + user_days * MEMORY_PER_USER_DAY + posts * MEMORY_PER_POST) * MEMORY_MARGIN
    return int(min(peak, 2.0**126))


_DEFAULT_FOLLOWS = WorldConfig.follows_mean * math.exp(WorldConfig.follows_sigma**2 / 2)


def _views_per_active_second(world: WorldConfig, behavior: BehaviorConfig) -> float:
    """Posts a user watches per second of attention (the seen filter is sized from it)."""
    mean_length = world.post_length_median_s * math.exp(world.post_length_sigma**2 / 2)
    return 1.0 / (0.4 * mean_length + behavior.swipe_seconds)


def machine_memory_bytes() -> int | None:
    """This machine's total memory in bytes (the smaller of physical memory and a cgroup limit),
    or None where it cannot be read."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit() and (total is None or int(limit) < total):
            total = int(limit)
    except OSError:
        pass
    return total if total and total > 0 else None


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size.

    >>> format_bytes(1.5 * 2**30), format_bytes(146 * 2**40)
    ('1.5 GiB', '146 TiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def check_memory(exp: Experiment, memory: int | None = None) -> int:
    """Raise :class:`ConfigError` if one run of ``exp`` (at any sweep point) cannot fit in
    ``memory`` bytes (default: :func:`machine_memory_bytes`); return the largest estimate."""
    peak, point = max(((estimate_peak_bytes(p.exp), p) for p in _memory_points(exp)), key=lambda pair: pair[0])
    memory = machine_memory_bytes() if memory is None else memory
    if memory is not None and peak > memory:
        source = getattr(exp, "_source", "<config>")
        where = f"sweep point {point.params}: " if point.params else ""
        raise ConfigError([f"{source}: {where}world.users: one run of {point.exp.world.users:,} users x "
                           f"{point.exp.horizon_days:g} days needs about {format_bytes(peak)} of memory; this "
                           f"machine has {format_bytes(memory)} (make world.users or horizon_days smaller)"])
    return peak


def _memory_points(exp: Experiment) -> list[Point]:
    """One point per distinct setting of the sweep's world and horizon keys (the rest do not
    change the memory a run needs)."""
    if not exp.sweep:
        return [Point(0, {}, exp)]
    table: dict[str, Any] = getattr(exp, "_table", {})
    source: str = getattr(exp, "_source", "<config>")
    base = {k: v for k, v in table.items() if k not in ("sweep", "quick", "baseline_point", "claims")}
    relevant: dict[str, dict[str, Any]] = {}
    for params in sweep_points(exp.sweep):
        sized = {k: v for k, v in params.items() if k.startswith(("world.", "horizon_days", "warmup_hours"))}
        relevant.setdefault(repr(sorted(sized.items())), sized)
    out = []
    for i, params in enumerate(relevant.values()):
        try:
            out.append(Point(i, params, parse_variant(apply_overrides(base, params, source), source)))
        except ConfigError as exc:
            prefix = f"{source}: "
            raise ConfigError([f"{source}: sweep point {params}: {p.removeprefix(prefix)}"
                               for p in exc.problems]) from None
    return out

