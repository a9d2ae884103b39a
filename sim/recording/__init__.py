"""What a run records: every result table's schema, declared once, and the recorder that fills them.

- :mod:`~sim.recording.schema`: ``SCHEMAS`` (every table, column, type, unit and meaning),
  ``MEASURES`` (every scenario measure) and the helpers that build conforming Arrow tables;
- :mod:`~sim.recording.recorder`: the :class:`Recorder`, which collects one run's records;
- :mod:`~sim.recording.measures`: the ``measures`` table, one reporter per kind of entity;
- :mod:`~sim.recording.view`: :class:`RunView`, all the recorder reads of a running simulation.
"""

from sim.recording.recorder import Recorder
from sim.recording.schema import MEASURES, SCHEMAS, Column, make_table, schema, sweep_field
from sim.recording.view import RunView

__all__ = ["MEASURES", "SCHEMAS", "Column", "Recorder", "RunView", "make_table", "schema", "sweep_field"]
