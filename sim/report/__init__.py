"""Build ``plots/`` and ``report.md`` from a results folder.

Reads only the folder's Parquet tables and ``manifest.json`` (never re-runs a
simulation), so a report can be rebuilt at any time::

    python -m sim.report results/<experiment>

A missing or unreadable table raises :class:`ReportError` naming the file.

Modules: :mod:`~.folder` reads a folder into tables and a figure context;
:mod:`~.selection` picks the figures that apply and captions them;
:mod:`~.figures` draws them (one module per figure family); :mod:`~.headlines`
writes each figure's finding; :mod:`~.markdown` and :mod:`~.measures` write
``report.md``; :mod:`~.formatting` writes numbers; :mod:`~.make` ties them
together.  The numbers come from :mod:`sim.analysis.tables`.
"""

from sim.analysis.summary import pooled_conversion_slope, summary_table
from sim.report.folder import REQUIRED, ReportError, context, load, load_table
from sim.report.make import build, main
from sim.report.markdown import _conversion_section, markdown
from sim.report.selection import draw, reference_point

__all__ = [
    "REQUIRED", "ReportError", "_conversion_section", "build", "context", "draw", "load", "load_table", "main",
    "markdown", "pooled_conversion_slope", "reference_point", "summary_table",
]
