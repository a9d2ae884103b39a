"""The recording package's declarations agree with each other."""

from __future__ import annotations

from sim.recording import MEASURES
from sim.recording.measures import REPORTERS


def test_every_measured_kind_has_exactly_one_reporter() -> None:
    """A kind declared in MEASURES without a reporter would silently give no rows."""
    kinds = [kind for _, reporters in REPORTERS for kind in reporters]
    assert sorted(kinds) == sorted(MEASURES)
    assert len(kinds) == len(set(kinds))
