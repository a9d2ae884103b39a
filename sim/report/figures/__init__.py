"""Figures for strategy decks: the only package that imports matplotlib; drawing only.

Every figure function takes result tables (``pyarrow.Table``, columns as in
:data:`sim.recording.SCHEMAS`) and a :class:`Context`, writes
``<ctx.plots_dir>/<name>.png`` (200 dpi, 16:9) and ``<name>.svg``, and returns
the figure's title: a sentence stating the finding (:mod:`sim.report.headlines`),
from numbers computed in :mod:`sim.analysis.tables`.

One module per figure family: :mod:`~.reach`, :mod:`~.sources`, :mod:`~.pools`,
:mod:`~.followers`, :mod:`~.concentration`, :mod:`~.accounts`, :mod:`~.products`,
:mod:`~.differences`, :mod:`~.highlights`, :mod:`~.bench`; what they share
(colours, fonts, footnote, saving) is in :mod:`~.style`.
"""

from sim.report.figures.accounts import follower_growth
from sim.report.figures.bench import bench_scaling
from sim.report.figures.concentration import inequality
from sim.report.figures.differences import forest
from sim.report.figures.followers import views_vs_followers
from sim.report.figures.highlights import by_ranker_ci, sweep
from sim.report.figures.pools import pool_ladder
from sim.report.figures.products import inventory, inventory_note
from sim.report.figures.reach import reach_over_time
from sim.report.figures.sources import view_sources
from sim.report.figures.style import PALETTE, POOL_CMAP, SOURCES, Context

__all__ = [
    "PALETTE", "POOL_CMAP", "SOURCES", "Context", "bench_scaling", "by_ranker_ci", "follower_growth", "forest",
    "inequality", "inventory", "inventory_note", "pool_ladder", "reach_over_time", "sweep", "view_sources",
    "views_vs_followers",
]
