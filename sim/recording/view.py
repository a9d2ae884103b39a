"""What the recorder reads of a running simulation: a narrow, typed view.

:class:`RunView` lists exactly the attributes the :class:`~sim.recording.recorder.Recorder` and the
measures read, and their types; ``sim.engine.Simulation`` satisfies it structurally (it holds these
attributes under these names), so recording never depends on the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from sim.config import Experiment
    from sim.model.state import PlatformState
    from sim.model.world import Sounds, Users, World


class Clock(Protocol):
    """The simulated clock (a ``simpy.Environment``)."""

    @property
    def now(self) -> float:
        """Simulated time, s from the end of the warm-up (negative during it)."""
        ...


class RunView(Protocol):
    """A run as the recorder reads it; array shapes are per user unless noted.

    Read-only properties, so that an implementation may hold a narrower type (a ``dict`` for a
    ``Mapping``) or a plain attribute.
    """

    @property
    def env(self) -> Clock:
        """The simulated clock."""
        ...

    @property
    def exp(self) -> Experiment:
        """The experiment the run belongs to."""
        ...

    @property
    def world(self) -> World:
        """The run's world: planted accounts, products, topics and fits."""
        ...

    @property
    def users(self) -> Users:
        """The world's users (``active``: shape ``(n_users,)`` bool)."""
        ...

    @property
    def state(self) -> PlatformState:
        """The platform state; the recorder reads ``follower_counts``, shape ``(n_users,)``."""
        ...

    @property
    def planted(self) -> np.ndarray:
        """Whether each user is a planted account, shape ``(n_users,)`` bool."""
        ...

    @property
    def sounds(self) -> Sounds:
        """Every sound released so far; ``names`` maps scenario sound names to ids."""
        ...

    @property
    def listened(self) -> np.ndarray:
        """Who has heard each scenario sound, shape ``(n_named_sounds, n_users)`` bool; rows in
        increasing sound id."""
        ...

    @property
    def listeners_via_artist(self) -> np.ndarray:
        """Listeners of each scenario sound who first heard it on the artist's own post, shape
        ``(n_named_sounds,)`` int64; same order as ``listened``."""
        ...

    @property
    def format_mix(self) -> Mapping[int, np.ndarray]:
        """Planted accounts posting over several formats: user id -> weight per format."""
        ...

    @property
    def inspired_topic(self) -> np.ndarray:
        """Topic each user started posting in after engaging with it (-1: none), shape
        ``(n_users,)`` int16."""
        ...

    @property
    def watch_by_day(self) -> np.ndarray:
        """Watch time per day and user, s, shape ``(n_days, n_users)`` float32 (warm-up included)."""
        ...

    @property
    def budget_by_day(self) -> np.ndarray:
        """Session budget per day and user, s, shape ``(n_days, n_users)`` float32."""
        ...
