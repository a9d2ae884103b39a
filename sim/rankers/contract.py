"""The slate rules the engine enforces on every ranker, and the contract suite behind ``check-ranker``.

:func:`check_slate` runs on every slate of every ranker, every round (:meth:`sim.engine.Simulation.rank`)
and raises :class:`SlateError` at the first breach, naming the ranker, the rule and one (user, post)
example.  The rules, in the order they are checked:

``shape``       ``post_ids`` and ``channel`` are numpy arrays of shape ``(n, k)``
``dtype``       ``post_ids`` int64, ``channel`` int8
``id range``    every id is -1 (padding) or a post that exists, ``0 <= id < len(posts)``
``channel``     every slot with a post carries a known channel code (:data:`~sim.rankers.base.CHANNEL_NAMES`)
``own post``    no user is shown a post they authored
``duplicate``   no post twice within one row
``seen``        no post that ``state.seen.contains(user, post)`` reports when ``rank`` is called

"Seen" is defined by the platform's own record, :class:`~sim.model.state.SeenFilter`: a Bloom filter
with no false negatives, so every post a user was shown is caught (one probe per slot) and nobody
sees a post twice.  Its few false positives are posts the platform treats as seen, so a ranker
must skip them too: it asks ``state.seen`` at the time it ranks, not earlier in the tick (the
engine adds each round's impressions before the next round is ranked).  The rule costs no memory
beyond the filter the rankers already use; an exact record of every pair would cost 8 bytes an
impression (over 2 KB a user-day), several times the filter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from sim.model.state import bloom_probe
from sim.rankers.base import CHANNEL_NAMES, Feedback, Ranker, Slate, resolve_ranker

if TYPE_CHECKING:
    from sim.model.state import SeenFilter

#: Known channel codes as a lookup table indexed by the code's byte (``channel.view(np.uint8)``).
KNOWN_CHANNEL = np.zeros(256, dtype=bool)
KNOWN_CHANNEL[np.array(sorted(CHANNEL_NAMES), dtype=np.int8).view(np.uint8)] = True

RULES = ("shape", "dtype", "id range", "channel", "own post", "duplicate", "seen")


class RankerError(Exception):
    """A ranker broke the run: it broke a slate rule, or raised ``SystemExit`` or ``KeyboardInterrupt``.

    The message names the ranker's label; the run fails, the batch goes on."""


class SlateError(RankerError):
    """A slate broke one of the engine's rules (:data:`RULES`).

    Attributes
    ----------
    label : str
        The ranker's label (its ``ranker`` column).
    rule : str
        One of :data:`RULES`.
    user, post : int
        One example of the breach (-1 where the rule is about the whole slate).
    """

    def __init__(self, message: str, label: str = "", rule: str = "", user: int = -1, post: int = -1):
        # Every field in ``args``: SimPy re-raises a process's exception as ``type(exc)(*exc.args)``.
        super().__init__(message, label, rule, user, post)
        self.label, self.rule, self.user, self.post = label, rule, user, post

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def breach(cls, label: str, rule: str, detail: str, user: int = -1, post: int = -1) -> SlateError:
        example = f" (e.g. user {user}, post {post})" if user >= 0 or post >= 0 else ""
        return cls(f"ranker {label!r} broke the slate rule {rule!r}: {detail}{example}", label, rule, user, post)


def check_slate(slate: Slate, users: np.ndarray, k: int, author: np.ndarray, seen: SeenFilter,
                label: str) -> None:
    """Raise :class:`SlateError` if ``slate`` (for ``users``, shape ``(n,)``, ``k`` slots) breaks a rule.

    ``author`` holds every post's author, so ``len(author)`` is the number of posts; ``seen`` holds
    what was served before this slate.  One compiled pass over the slots with a post, one Bloom
    probe each.
    """
    ids, channel = getattr(slate, "post_ids", None), getattr(slate, "channel", None)
    n = len(users)
    for name, array in (("post_ids", ids), ("channel", channel)):
        if not isinstance(array, np.ndarray) or array.shape != (n, k):
            got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
            raise SlateError.breach(label, "shape", f"slate.{name} must be a numpy array of shape (n, k) = "
                                    f"({n}, {k}), got {got}")
    assert isinstance(ids, np.ndarray) and isinstance(channel, np.ndarray)
    if ids.dtype != np.int64 or channel.dtype != np.int8:
        raise SlateError.breach(label, "dtype", f"post_ids must be int64 and channel int8, got {ids.dtype} "
                                f"and {channel.dtype}")
    rule, row, col = _scan(ids, channel, np.ascontiguousarray(users, dtype=np.int64), author, KNOWN_CHANNEL,
                           seen.bits, seen.offset, seen.words_per_user)
    if rule >= 0:
        user, post = int(users[row]), int(ids[row, col])
        raise SlateError.breach(label, RULES[rule], _DETAIL[rule].format(post=post, code=int(channel[row, col]),
                                                                        n_posts=len(author)), user, post)


_DETAIL = {
    RULES.index("id range"): "post id {post} is neither -1 (padding) nor one of the {n_posts} posts",
    RULES.index("channel"): "unknown channel code {code} (known: " + ", ".join(map(str, sorted(CHANNEL_NAMES))) + ")",
    RULES.index("own post"): "a user was offered a post they authored",
    RULES.index("duplicate"): "a post appears twice in one slate row",
    RULES.index("seen"): "a post the user has already been shown (state.seen.contains reports it; rank() must "
                         "skip what it reports at the time rank() is called)",
}


@numba.njit(cache=True)
def _scan(ids: np.ndarray, channel: np.ndarray, users: np.ndarray, author: np.ndarray, known: np.ndarray,
          seen_bits: np.ndarray, seen_offset: np.ndarray, seen_words: np.ndarray) -> tuple[int, int, int]:
    """One pass over a slate's slots, in row order: the first slot that breaks a rule as (index
    into :data:`RULES`, row, column), or (-1, -1, -1)."""
    n, k = ids.shape
    n_posts = len(author)
    for r in range(n):
        user = users[r]
        for c in range(k):
            post = ids[r, c]
            if post == -1:
                continue
            if post < -1 or post >= n_posts:
                return 2, r, c
            if not known[np.uint8(channel[r, c])]:
                return 3, r, c
            if author[post] == user:
                return 4, r, c
            for before in range(c):
                if ids[r, before] == post:
                    return 5, r, c
            word, mask = bloom_probe(user, post, seen_offset, seen_words)
            if (seen_bits[word] & mask) == mask:
                return 6, r, c
    return -1, -1, -1


# --------------------------------------------------------------------------- check-ranker


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One contract check of :func:`check_ranker`: its name, whether it passed, what failed."""

    check: str
    passed: bool
    detail: str = ""


def _tiny_experiment(name: str) -> Any:
    from sim.config import parse

    return parse({"name": "check_ranker", "seed": 3, "replicates": 1, "horizon_days": 0.04, "warmup_hours": 1.0,
                  "world": {"users": 1200, "posting_rate_mean": 0.5}, "rankers": [{"name": name}]},
                 source=f"check-ranker {name}")


def _constructor(cls: type[Ranker]) -> str:
    params, rng = cls.Params(), np.random.default_rng(0)
    before = rng.bit_generator.state
    ranker = cls(params, rng)
    if ranker.params is not params or ranker.rng is not rng:
        return "the constructor must store its params and rng as self.params and self.rng"
    if rng.bit_generator.state != before:
        return "the constructor drew from the generator: draw in start() or rank()"
    extra = sorted(set(vars(ranker)) - {"params", "rng", "state"})
    if extra:
        return f"the constructor set {', '.join(extra)}: build state in start(state), not in __init__"
    return ""


def _params(cls: type[Ranker]) -> str:
    if not dataclasses.is_dataclass(cls.Params):
        return f"{cls.__name__}.Params must be a dataclass (frozen, fields made with knob())"
    problems = []
    for f in dataclasses.fields(cls.Params):
        meta = f.metadata
        if not meta.get("desc"):
            problems.append(f"{f.name}: no description")
        numeric = f.type in ("int", "float", int, float)
        if numeric and meta.get("lo") is None and meta.get("hi") is None:
            problems.append(f"{f.name}: no range (lo= or hi=)")
        if f.type in ("str", str) and not meta.get("choices"):
            problems.append(f"{f.name}: no choices")
    return "; ".join(problems)


def _slates(ranker: Ranker, users: np.ndarray, now: float) -> Slate:
    ranker.review(now)
    return ranker.rank(users, now, 8)


def _determinism(cls: type[Ranker], sim: Any) -> str:
    st, now = sim.state, sim.env.now
    users = np.arange(0, st.n_users, 5, dtype=np.int64)
    seen_bits, views = st.seen.bits.copy(), st.posts.views.copy()
    slates = []
    for _ in range(2):
        ranker = cls(cls.Params(), np.random.default_rng(11))
        ranker.start(st)
        slates.append(_slates(ranker, users, now))
    if not (np.array_equal(slates[0].post_ids, slates[1].post_ids)
            and np.array_equal(slates[0].channel, slates[1].channel)):
        return "two rankers built with the same generator gave different slates"
    if not (np.array_equal(st.seen.bits, seen_bits) and np.array_equal(st.posts.views, views)):
        return "rank() or review() wrote to the platform state (it is read-only)"
    return ""


def _observe(cls: type[Ranker], sim: Any) -> str:
    st, now = sim.state, sim.env.now
    users = np.arange(0, st.n_users, 3, dtype=np.int64)
    ranker = cls(cls.Params(), np.random.default_rng(12))
    ranker.start(st)
    slate = _slates(ranker, users, now)
    rows, cols = np.nonzero(np.logical_and.accumulate(slate.post_ids >= 0, axis=1))
    m = len(rows)
    rng = np.random.default_rng(13)
    fraction = rng.random(m, dtype=np.float32)
    for size in (0, m):
        pick = slice(0, size)
        ranker.observe(Feedback(
            user=users[rows][pick], post=slate.post_ids[rows, cols][pick], channel=slate.channel[rows, cols][pick],
            position=cols[pick].astype(np.int32), watch_fraction=fraction[pick], completed=fraction[pick] > 0.9,
            liked=fraction[pick] > 0.8, commented=fraction[pick] > 0.95, shared=fraction[pick] > 0.97,
            followed=fraction[pick] > 0.98, purchased=np.zeros(size, dtype=bool)))  # fmt: skip
    return ""


def check_ranker(name: str) -> list[CheckResult]:
    """Run the contract suite on the ranker called ``name`` (a registered name or ``module:Class``)
    on a tiny world, in the spirit of scikit-learn's ``check_estimator``."""
    from sim.engine import Simulation

    cls = resolve_ranker(name)
    exp = _tiny_experiment(name)
    results = []

    def attempt(check: str, run: Callable[[], str]) -> None:
        try:
            detail = run()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a check fails, whatever the ranker raised
            detail = f"raised {type(exc).__name__}: {exc}"
        results.append(CheckResult(check, not detail, detail))

    attempt("constructor stores params and rng and does no work", lambda: _constructor(cls))
    attempt("every Params field has a description and a range", lambda: _params(cls))
    sim = Simulation(exp, exp.rankers[0], 0)

    def short_run() -> str:
        sim.run()
        return "" if sim.impressions > 0 else "no impressions in a short run: every slate was empty"

    attempt("slates obey the engine's rules over a short run", short_run)
    attempt("the same generator gives the same slates; rank() does not write the state",
            lambda: _determinism(cls, sim))
    attempt("observe() accepts feedback (empty, and of a served slate)", lambda: _observe(cls, sim))
    return results
