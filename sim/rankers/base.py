"""The batched ranker contract, channel codes and the ranker registry.

A ranker is built from its validated ``Params`` and its own ``Generator``
(constructors store, they do no work); :meth:`Ranker.start` hands it the
read-only :class:`~sim.model.state.PlatformState`; then every tick the engine calls
:meth:`Ranker.review` once and, for each round of the tick's sessions,
:meth:`Ranker.rank` and :meth:`Ranker.observe`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from sim.model.state import PlatformState

# Channel codes (int8), one per impression: where the view came from.
FOLLOWING = 0  # a followed account's post in a follower feed (or mixed into For You)
RESHARE = 1  # a post a followed account reshared
EXPLORE = 2  # For You interest retrieval outside the pools (recent posts of a topic)
SOUND = 3  # a sound page / duet chain (reserved for derivative posts)
OTHER = 4  # baseline rankers (random, popularity, chronological)
POOL = 10  # For You traffic pool stage s is POOL + s
MAX_STAGES = 8

CHANNEL_NAMES = {FOLLOWING: "following", RESHARE: "reshare", EXPLORE: "for_you_explore", SOUND: "sound",
                 OTHER: "other", **{POOL + s: f"for_you_pool_{s}" for s in range(MAX_STAGES)}}


def channel_group(channel: np.ndarray) -> np.ndarray:
    """Map channel codes to the posts table's view columns: 0 following, 1 reshare, 2 pool,
    3 explore, 4 other (sound and baselines)."""
    out = np.full(channel.shape, 4, dtype=np.int8)
    out[channel == FOLLOWING] = 0
    out[channel == RESHARE] = 1
    out[channel >= POOL] = 2
    out[channel == EXPLORE] = 3
    return out


@dataclass(frozen=True)
class Slate:
    """Ranked posts for a batch of users.

    Attributes
    ----------
    post_ids : (n, k) int64
        Post ids in display order, padded with -1 where the feed has run out.
    channel : (n, k) int8
        Channel code of each slot (meaningless where ``post_ids`` is -1).
    """

    post_ids: np.ndarray
    channel: np.ndarray

    @classmethod
    def empty(cls, n: int, k: int) -> Slate:
        return cls(np.full((n, k), -1, dtype=np.int64), np.zeros((n, k), dtype=np.int8))


@dataclass(frozen=True)
class Feedback:
    """Engagement of one round of impressions: flat arrays of shape ``(m,)``."""

    user: np.ndarray  # int64
    post: np.ndarray  # int64
    channel: np.ndarray  # int8
    position: np.ndarray  # int32, index of the impression within its session
    watch_fraction: np.ndarray  # float32
    completed: np.ndarray  # bool
    liked: np.ndarray  # bool
    commented: np.ndarray  # bool
    shared: np.ndarray  # bool
    followed: np.ndarray  # bool
    purchased: np.ndarray  # bool
    shown_likes: np.ndarray | None = None  # int: the post's like count the viewer saw (bought ones included)
    shown_followers: np.ndarray | None = None  # int: its author's follower count the viewer saw


@dataclass(frozen=True)
class PoolDecisions:
    """Pool reviews of one tick, arrays of shape ``(m,)``."""

    post: np.ndarray  # int64
    stage: np.ndarray  # int8, the stage reviewed
    impressions: np.ndarray  # int32, pool impressions at that stage
    score: np.ndarray  # float64
    threshold: np.ndarray  # float64
    promoted: np.ndarray  # bool
    early: np.ndarray | None = None  # bool: stopped at an early look (None: none was)


@dataclass(frozen=True)
class NoParams:
    """A ranker without parameters."""


class Ranker:
    """Base class.  Subclasses set ``Params`` (a frozen dataclass of documented fields)."""

    Params: ClassVar[type] = NoParams
    name: ClassVar[str] = ""

    def __init__(self, params: Any, rng: np.random.Generator):
        self.params = params
        self.rng = rng
        self.state: PlatformState | None = None

    def start(self, state: PlatformState) -> None:
        """Called once before the first tick with the read-only platform state."""
        self.state = state

    def review(self, now: float) -> PoolDecisions | None:
        """Called once per tick before sessions are served; may promote posts."""
        return None

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        """Slates of ``k`` posts for ``users`` (shape ``(n,)``), none seen before."""
        raise NotImplementedError

    def observe(self, feedback: Feedback) -> None:
        """Engagement of the impressions just served."""


RANKERS: dict[str, type[Ranker]] = {}


def register(cls: type[Ranker]) -> type[Ranker]:
    """Class decorator: add a ranker to :data:`RANKERS` under ``cls.name``."""
    RANKERS[cls.name] = cls
    return cls


#: Entry point group through which an installed package offers rankers by short name:
#: ``[project.entry-points."feedsim.rankers"] my_name = "my_package.module:MyRanker"``.
ENTRY_POINT_GROUP = "feedsim.rankers"


def resolve_ranker(name: str) -> type[Ranker]:
    """The ranker class called ``name``.

    ``'package.module:Class'`` is imported from ``sys.path`` (``PYTHONPATH``, installed packages),
    then from the working directory.  A short name is looked up in :data:`RANKERS`, then among the
    ``feedsim.rankers`` entry points of installed packages (a registered name wins).
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        cls = getattr(_import_ranker_module(module_name), attr, None)
        if not (isinstance(cls, type) and issubclass(cls, Ranker)):
            raise AttributeError(f"{name!r} is not a Ranker subclass")
        return cls
    if name in RANKERS:
        return RANKERS[name]
    installed = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name not in installed:
        raise KeyError(f"unknown ranker {name!r} (built in: {', '.join(sorted(RANKERS))}; installed "
                       f"({ENTRY_POINT_GROUP} entry points): {', '.join(sorted(installed)) or 'none'}; "
                       f"or give 'module:Class' importable from PYTHONPATH or the working directory)")
    ep = installed[name]
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin may raise anything on import
        raise ImportError(f"ranker {name!r}: cannot load its entry point {ep.value!r}: {exc!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Ranker)):
        raise AttributeError(f"ranker {name!r}: entry point {ep.value!r} is not a Ranker subclass")
    return cls


def _import_ranker_module(module_name: str) -> ModuleType:
    """Import a user ranker's module from ``sys.path``, else from the working directory (which a
    script run from elsewhere does not have on its path); a module found there keeps it on the
    path, so what it imports later is found too."""
    top, cwd = module_name.partition(".")[0], os.getcwd()
    searched = f"(searched PYTHONPATH, the installed packages and the working directory {cwd})"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != top:  # found, but something it imports is missing
            raise ImportError(f"cannot import ranker module {module_name!r}: {exc}") from exc
        if cwd in {os.path.abspath(entry or ".") for entry in sys.path}:
            raise ImportError(f"cannot import ranker module {module_name!r}: {exc} {searched}") from exc
    except ImportError as exc:
        raise ImportError(f"cannot import ranker module {module_name!r}: {exc}") from exc
    sys.path.append(cwd)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == top:
            sys.path.remove(cwd)
            raise ImportError(f"cannot import ranker module {module_name!r}: {exc} {searched}") from exc
        raise ImportError(f"cannot import ranker module {module_name!r}: {exc}") from exc


def first_k_valid(candidates: np.ndarray, channels: np.ndarray, valid: np.ndarray, k: int) -> Slate:
    """Keep the first ``k`` valid candidates of each row, in order; pad with -1.

    ``candidates``, ``channels`` and ``valid`` have shape ``(n, c)``.
    """
    n = candidates.shape[0]
    slate = Slate.empty(n, k)
    rank = np.cumsum(valid, axis=1) - 1
    take = valid & (rank < k)
    rows, cols = np.nonzero(take)
    slate.post_ids[rows, rank[rows, cols]] = candidates[rows, cols]
    slate.channel[rows, rank[rows, cols]] = channels[rows, cols]
    return slate


def duplicate_in_row(candidates: np.ndarray) -> np.ndarray:
    """True for every repeat of an id earlier in the same row, shape ``(n, c)``.

    Negative ids (the -1 padding of a slate) are never duplicates.
    """
    n, c = candidates.shape
    if n == 0 or c == 0:
        return np.zeros(candidates.shape, dtype=bool)
    span = int(candidates.max()) - int(candidates.min()) + 1
    keys = (np.arange(n, dtype=np.int64)[:, None] * span + (candidates - candidates.min())).ravel()
    _, first = np.unique(keys, return_index=True)
    dup = np.ones(n * c, dtype=bool)
    dup[first] = False
    return dup.reshape(n, c) & (candidates >= 0)


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices ``starts[i], ..., starts[i] + counts[i] - 1`` of every range, in order, as one
    int64 array (the rows of a CSR slice, a sorted index's groups)."""
    counts = counts.astype(np.int64)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts.astype(np.int64), counts) + offsets


def followee_edges(state: PlatformState, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (index into ``users``) and followee ids of every follow edge of ``users``."""
    indptr = state.follows.indptr
    starts = indptr[users].astype(np.int64)
    degree = indptr[users + 1].astype(np.int64) - starts
    rows = np.repeat(np.arange(len(users)), degree)
    return rows, state.follows.indices[ranges(starts, degree)].astype(np.int64)
