"""``python -m sim bench``: engine throughput against a floor kernel, in one process.

The floor kernel is the least batched numpy work that can serve an impression: per batch of
1,024 sessions, 64 candidate post ids per session drawn from the user's topic bucket out of
200,000 live posts, their 32-dimensional float32 vectors gathered and scored by dot product,
the top 8 kept, a watch fraction, like and share drawn per impression and per-post counters
scatter-added.  No events, no bookkeeping: the ratio engine / floor says how much the
simulator's model and records cost on top of the unavoidable work, on the same machine, in
the same run.  A tiny warm-up run first builds (or loads) the compiled kernels, so that one-time
JIT compilation is reported as ``warm_up_s`` and not counted as engine time.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sim.batch.runner import git_revision
from sim.config import Experiment, RankerSpec, parse
from sim.model.rng import streams

FLOOR_POSTS = 200_000
FLOOR_DIM = 32
FLOOR_BATCH = 1024
FLOOR_CANDIDATES = 64
FLOOR_SLATE = 8


def floor_kernel(seconds: float = 3.0, seed: int = 0) -> float:
    """Impressions per second of the floor kernel, run for about ``seconds``; its synthetic posts and
    sessions are drawn from the ``bench`` stream of ``seed`` (:mod:`sim.model.rng`)."""
    rng = streams(seed, 0)["bench"]
    n_topics = 20
    vectors = rng.standard_normal((FLOOR_POSTS, FLOOR_DIM), dtype=np.float32)
    topic_of_post = rng.integers(0, n_topics, FLOOR_POSTS)
    order = np.argsort(topic_of_post, kind="stable")
    bucket_start = np.searchsorted(topic_of_post[order], np.arange(n_topics))
    bucket_size = np.bincount(topic_of_post, minlength=n_topics)
    views = np.zeros(FLOOR_POSTS, np.int64)
    likes = np.zeros(FLOOR_POSTS, np.int64)
    shares = np.zeros(FLOOR_POSTS, np.int64)
    served = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        user_topic = rng.integers(0, n_topics, FLOOR_BATCH)
        user_vec = rng.standard_normal((FLOOR_BATCH, FLOOR_DIM), dtype=np.float32)
        offset = (rng.random((FLOOR_BATCH, FLOOR_CANDIDATES)) * bucket_size[user_topic][:, None]).astype(np.int64)
        cand = order[bucket_start[user_topic][:, None] + offset]
        score = np.einsum("bcd,bd->bc", vectors[cand], user_vec)
        top = np.argpartition(-score, FLOOR_SLATE, axis=1)[:, :FLOOR_SLATE]
        post = np.take_along_axis(cand, top, axis=1).ravel()
        watch = rng.random(len(post), dtype=np.float32)
        liked = rng.random(len(post)) < 0.05 * watch
        shared = rng.random(len(post)) < 0.004 * watch
        np.add.at(views, post, 1)
        np.add.at(likes, post[liked], 1)
        np.add.at(shares, post[shared], 1)
        served += len(post)
    return served / (time.perf_counter() - started)


def bench_experiment(users: int, days: float, seed: int = 7) -> Experiment:
    """The standard synthetic world: default calibrated behaviour, content and follower rankers."""
    return parse({"seed": seed, "replicates": 1, "horizon_days": days, "warmup_hours": 6.0,
                  "world": {"users": users}, "rankers": [{"name": "content"}, {"name": "follower"}]}, "bench")


def run_engine(exp: Experiment, spec: RankerSpec) -> dict[str, float]:
    """One run of ``spec`` on replicate 0: impressions, wall-clock and setup seconds, the slate checks'
    seconds, impressions and events per second."""
    from sim.engine import Simulation

    started = time.perf_counter()
    sim = Simulation(exp, spec, 0)
    setup = time.perf_counter() - started
    sim.run()
    events = len(sim.posts) + sum(len(d.post) for _, d in sim.recorder._promotions)
    result = {"impressions": sim.impressions, "wall_s": sim.wall_s, "setup_s": setup, "slate_check_s": sim.check_s,
              "impressions_per_s": sim.impressions / sim.wall_s, "events_per_s": events / sim.wall_s}
    # A simulation holds reference cycles (SimPy processes): free its world now, so that the
    # next ranker's run does not stack its peak memory on this one's.
    del sim
    gc.collect()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def warm_up() -> float:
    """Run both rankers on a tiny world so that compiled kernels are built (or loaded from
    numba's on-disk cache) before anything is timed; returns the seconds it took."""
    started = time.perf_counter()
    exp = bench_experiment(2000, 0.01)
    for spec in exp.rankers:
        run_engine(exp, spec)
    return time.perf_counter() - started


def bench(users: int, days: float) -> dict[str, Any]:
    """One size: floor kernel, then the engine with the content and the follower ranker."""
    warm = warm_up()
    exp = bench_experiment(users, days)
    # The floor brackets the content run and is averaged: on a shared machine the load can
    # change within minutes, and a ratio against one 3-second sample swings with it.
    floor_before = floor_kernel()
    content = run_engine(exp, exp.rankers[0])
    floor_after = floor_kernel()
    floor = (floor_before + floor_after) / 2
    follower = run_engine(exp, exp.rankers[1])
    return {
        "users": users, "days": days,
        "impressions_per_s": round(content["impressions_per_s"]),
        "follower_impressions_per_s": round(follower["impressions_per_s"]),
        "floor_impressions_per_s": round(floor),
        "floor_before_after": [round(floor_before), round(floor_after)],
        "ratio": round(content["impressions_per_s"] / floor, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "setup_s": round(content["setup_s"], 2), "warm_up_s": round(warm, 2),
        "events_per_s": round(content["events_per_s"], 1),
        "content_impressions": content["impressions"], "content_wall_s": round(content["wall_s"], 2),
        # The engine's slate checks (sim.rankers.contract), timed inside the runs: their share of run time.
        "slate_check_share": round(content["slate_check_s"] / content["wall_s"], 4),
        "follower_slate_check_share": round(follower["slate_check_s"] / follower["wall_s"], 4),
        "cores": _cores(), "git_revision": git_revision(),
    }  # fmt: skip


def _cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def table(rows: list[dict[str, Any]]) -> str:
    """:func:`bench` rows as a fixed-width text table, one line per size."""
    head = f"{'users':>10}{'days':>6}{'content imp/s':>15}{'follower imp/s':>16}{'floor imp/s':>14}" \
           f"{'ratio':>8}{'peak MB':>9}{'setup s':>9}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['users']:>10,}{r['days']:>6g}{r['impressions_per_s']:>15,}"
                     f"{r['follower_impressions_per_s']:>16,}{r['floor_impressions_per_s']:>14,}"
                     f"{r['ratio']:>8.3f}{r['peak_rss_mb']:>9,.0f}{r['setup_s']:>9.1f}")
    return "\n".join(lines)


SCALING = (50_000, 100_000, 200_000, 500_000, 1_000_000)


def scaling(days: float, out: Path) -> list[dict[str, Any]]:
    """Each size in a fresh process (so peak memory is per size); writes out/bench.json and a plot."""
    import subprocess
    import sys

    rows = []
    for users in SCALING:
        proc = subprocess.run([sys.executable, "-m", "sim", "bench", "--users", str(users), "--days", str(days),
                               "--json"], capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(rows, indent=2))
    try:
        from sim.report.figures import bench_scaling
    except ImportError:
        return rows
    bench_scaling(rows, out / "scaling")
    return rows


def jobs_experiment(runs: int, users: int, days: float, seed: int = 7) -> Experiment:
    """``runs`` copies of the content ranker under distinct labels, one replicate: the runs share the
    world and arrivals, so every run does the same work."""
    rankers = [{"name": "content", "label": f"content-{i}"} for i in range(runs)]
    return parse({"seed": seed, "replicates": 1, "horizon_days": days, "warmup_hours": 6.0,
                  "world": {"users": users}, "rankers": rankers}, "bench")


def jobs_scaling(runs: int, users: int, days: float) -> list[dict[str, Any]]:
    """The same batch through the runner with ``--jobs 1`` and with every core this process may use;
    wall clock of the whole batch (runs, combined tables, summary) into a temporary folder."""
    from sim.batch.plan import plan
    from sim.batch.runner import Runner
    from sim.config import points

    exp = jobs_experiment(runs, users, days)
    cores = _cores()
    rows: list[dict[str, Any]] = []
    for jobs in sorted({1, cores}):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            outcomes = Runner(exp, Path(out), jobs=jobs, progress=lambda line: None).run(plan(points(exp)))
            wall = time.perf_counter() - started
        impressions = sum(o.impressions for o in outcomes)
        rows.append({"jobs": jobs, "runs": runs, "users": users, "days": days, "wall_s": round(wall, 2),
                     "runs_per_s": round(runs / wall, 4), "impressions_per_s": round(impressions / wall),
                     "speedup": round(rows[0]["wall_s"] / wall, 2) if rows else 1.0,
                     "git_revision": git_revision()})
    return rows


def jobs_table(rows: list[dict[str, Any]]) -> str:
    """:func:`jobs_scaling` rows as a fixed-width text table, one line per job count."""
    lines = [f"{'jobs':>5}{'runs':>6}{'users':>10}{'days':>6}{'wall s':>9}{'runs/s':>9}{'impressions/s':>15}"
             f"{'speedup':>9}"]
    for r in rows:
        lines.append(f"{r['jobs']:>5}{r['runs']:>6}{r['users']:>10,}{r['days']:>6g}{r['wall_s']:>9.1f}"
                     f"{r['runs_per_s']:>9.3f}{r['impressions_per_s']:>15,}{r['speedup']:>8.2f}x")
    return "\n".join(lines)
