"""Compare a ranker of one's own with feedsim's ``content`` and ``follower`` rankers, from Python.

Notebook-style: each block below is a cell.  Run from the repository root::

    PYTHONPATH=examples/my_ranker .venv/bin/python examples/compare_rankers.py   # or: make example

(after ``pip install -e examples/my_ranker`` the short name ``liked`` works too:
``... compare_rankers.py --ranker liked``).  A tiny world, so it takes well under a minute;
results land in ``results/compare_rankers`` (``--out`` to change).
"""

from __future__ import annotations

import argparse

import sim

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--ranker", default="my_ranker:LikedInTopic",
                    help="the custom ranker: 'module:Class' or an installed short name (default %(default)s)")
parser.add_argument("--out", default="results/compare_rankers", help="results folder (default %(default)s)")
args = parser.parse_args()

# %% The experiment, as the dict an experiment file's TOML would parse to: a 3,000-user world, 6
# simulated hours, and a 20-follower account that posts one excellent video an hour in.
experiment = {
    "name": "compare_rankers",
    "seed": 7,
    "replicates": 2,
    "horizon_days": 0.25,
    "warmup_hours": 2.0,
    "world": {"users": 3000, "posting_rate_mean": 0.5,
              "accounts": [{"name": "newcomer", "followers": 20, "topic": "#crafttok"}]},
    "events": [{"name": "video", "account": "newcomer", "at_hours": 1.0, "quality_quantile": 0.99}],
    "rankers": [{"name": "content"}, {"name": "follower"}, {"name": args.ranker, "label": "mine"}],
    "baseline": "follower",
}

# %% Run it (finished runs in the folder are kept, so running the cell again is instant).
results = sim.run(experiment, out=args.out, report=False)
print(results)

# %% One row per ranker: the mean over replicates of a few of runs.parquet's columns.
runs = results.table("runs").to_pylist()
columns = [("impressions", "{:,.0f}"), ("median_daily_watch_min", "{:.1f}"), ("like_rate", "{:.2%}"),
           ("following_share", "{:.0%}"), ("views_gini", "{:.2f}"), ("focal_reach_ratio", "{:.1f}x")]
print(f"{'ranker':<10}" + "".join(f"{name:>{len(name) + 2}}" for name, _ in columns))
for ranker in results.rankers:
    rows = [r for r in runs if r["ranker"] == ranker]
    cells = []
    for name, fmt in columns:
        values = [r[name] for r in rows if r[name] is not None]
        cells.append(f"{fmt.format(sum(values) / len(values)) if values else 'none':>{len(name) + 2}}")
    print(f"{ranker:<10}" + "".join(cells))
