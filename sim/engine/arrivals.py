"""Who starts a session in a tick window, and for how long.

Drawn only from the ``arrivals`` stream, so every ranker of a replicate sees the same arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.config import DAY
from sim.engine.platform import Platform, day_index, hour_factor

#: Shape and scale of the gamma draw that spreads session lengths around their mean (mean 1).
SESSION_GAMMA_SHAPE = 2.0
SESSION_GAMMA_SCALE = 0.5


@dataclass
class Arrivals:
    """Today's session rates.

    Attributes
    ----------
    day : int
        The day (since the warm-up began) ``session_cum`` was drawn for; -1 before the first.
    session_cum : np.ndarray
        Shape ``(n_users,)``: cumulative session rate (sessions/s) of the users active today.
    """

    day: int = -1
    session_cum: np.ndarray = field(default_factory=lambda: np.zeros(0))


def draw_sessions(arrivals: Arrivals, platform: Platform, now: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Users starting a session in ``[now, now + tick_s)`` and their session lengths (s).

    Returns ``(users, seconds)``, both shape ``(n_sessions,)``, users sorted and unique: a user drawn
    twice gets one session of the summed length.
    """
    exp, users = platform.exp, platform.users
    day = day_index(platform, now)
    if day != arrivals.day:
        # Who opens the app today: each user with their daily-activity probability.  Active
        # users then start sessions at sessions_per_day, each a share of their daily budget.
        # Bought followers (trailing inactive rows) draw nothing: paired worlds share every draw.
        n_real = exp.world.users
        active_today = rng.random(n_real) < users.active_share[:n_real]
        arrivals.session_cum = np.cumsum(active_today * (exp.world.sessions_per_day / DAY))
        arrivals.day = day
    total = arrivals.session_cum[-1]
    if total <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    m = rng.poisson(total * platform.tick_s * hour_factor(platform, now))
    who = np.searchsorted(arrivals.session_cum, rng.random(m) * total, side="right")
    mean_session = users.attention_s[who] / exp.world.sessions_per_day
    seconds = mean_session * rng.gamma(SESSION_GAMMA_SHAPE, SESSION_GAMMA_SCALE, m).astype(np.float32)
    who, inverse = np.unique(who, return_inverse=True)
    return who, np.bincount(inverse, weights=seconds, minlength=len(who))
