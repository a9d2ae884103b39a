"""Mutable platform state shared by the engine (writer) and rankers (readers).

Rankers receive a :class:`PlatformState` and must treat it as read-only; the
engine is the only writer.  Besides the world's arrays it holds

- :class:`SeenFilter`: which (user, post) pairs were already shown, so that no
  ranker shows a user the same post twice;
- per-account rings of the latest posts and reshares (what a follower feed
  pulls from) and per-topic rings of recent posts (what interest retrieval
  pulls from).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from sim.model.graph import release_free_heap, row_contains
from sim.model.world import Posts, World

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def bloom_probe(user: int, post: int, offset: np.ndarray, words: np.ndarray) -> tuple[int, np.uint64]:
    """Word index into ``SeenFilter.bits`` and two-bit mask of one (user, post) pair.

    The hash is the splitmix64 finaliser of (post x M1) xor (user x M2); the word lies in the
    user's own block, the two bits come from the hash's high bits.  Compiled, so rankers' own
    kernels can probe the filter per candidate.
    """
    x = np.uint64(post) * _M1 ^ np.uint64(user) * _M2
    x ^= x >> np.uint64(31)
    x *= _M3
    x ^= x >> np.uint64(29)
    word = offset[user] + np.int64(x % words[user])
    one = np.uint64(1)
    mask = (one << ((x >> np.uint64(40)) & np.uint64(63))) | (one << ((x >> np.uint64(52)) & np.uint64(63)))
    return word, mask


@numba.njit(cache=True)
def _bloom_contains(bits: np.ndarray, offset: np.ndarray, words: np.ndarray, users: np.ndarray,
                    posts: np.ndarray, out: np.ndarray) -> None:
    """``out[i]``: whether both bits of pair (``users[i]``, ``posts[i]``) are set; all shape ``(m,)``."""
    for i in range(len(posts)):
        word, mask = bloom_probe(users[i], posts[i], offset, words)
        out[i] = (bits[word] & mask) == mask


@numba.njit(cache=True)
def _bloom_add(bits: np.ndarray, offset: np.ndarray, words: np.ndarray, users: np.ndarray,
               posts: np.ndarray) -> None:
    """Set both bits of each pair (``users[i]``, ``posts[i]``), shape ``(m,)`` each."""
    for i in range(len(posts)):
        word, mask = bloom_probe(users[i], posts[i], offset, words)
        bits[word] |= mask


class SeenFilter:
    """Per-user blocked Bloom filter of posts already shown.

    ``contains`` has no false negatives, so a post marked seen is never shown
    again: the guarantee "no user sees a post twice" is exact.  False positives
    only make a ranker skip a post the user has not seen; each user's filter is
    sized from their expected views (``bits_per_view`` bits each) to keep that
    rate at a few percent.

    Parameters
    ----------
    expected_views : (n_users,) float
        Impressions each user is expected to see over the run.
    bits_per_view : float
        Filter bits per expected view.
    min_words : int
        The smallest block a user gets, in 64-bit words.

    Attributes
    ----------
    bits : (total_words,) uint64
        Every user's block, back to back.
    offset : (n_users,) int64
        First word of each user's block.
    words_per_user : (n_users,) uint64
        Length of each user's block, in words.
    """

    def __init__(self, expected_views: np.ndarray, bits_per_view: float = 12.0, min_words: int = 4):
        words = np.maximum(min_words, np.ceil(expected_views * bits_per_view / 64.0)).astype(np.int64)
        self.offset = np.concatenate([[0], np.cumsum(words)[:-1]]).astype(np.int64)
        self.words_per_user = words.astype(np.uint64)
        self.bits = np.zeros(int(words.sum()), dtype=np.uint64)

    def contains(self, users: np.ndarray, posts: np.ndarray) -> np.ndarray:
        """Whether each (user, post) pair may have been seen; same shape as ``posts``."""
        shape = posts.shape
        flat_users = np.ascontiguousarray(np.broadcast_to(users, shape).ravel(), dtype=np.int64)
        out = np.empty(posts.size, dtype=bool)
        _bloom_contains(self.bits, self.offset, self.words_per_user, flat_users,
                        np.ascontiguousarray(posts.ravel(), dtype=np.int64), out)
        return out.reshape(shape)

    def add(self, users: np.ndarray, posts: np.ndarray) -> None:
        """Mark (user, post) pairs, shape ``(m,)`` each, as seen."""
        _bloom_add(self.bits, self.offset, self.words_per_user, np.ascontiguousarray(users, dtype=np.int64),
                   np.ascontiguousarray(posts, dtype=np.int64))


class Rings:
    """Fixed-size rings of the latest ids per owner (account or topic), newest first on read.

    ``items`` has shape ``(n_owners, size)``; unused slots hold -1.
    """

    def __init__(self, n_owners: int, size: int):
        self.items = np.full((n_owners, size), -1, dtype=np.int32)  # post ids fit int32: half the memory
        self.head = np.zeros(n_owners, dtype=np.int64)

    def push(self, owners: np.ndarray, ids: np.ndarray) -> None:
        """Append ``ids[i]`` to owner ``owners[i]``'s ring, in the given order."""
        if len(owners) == 0:
            return
        order = np.argsort(owners, kind="stable")
        o = owners[order]
        starts = np.searchsorted(o, o, side="left")
        rank = np.arange(len(o)) - starts
        size = self.items.shape[1]
        slot = (self.head[o] + rank) % size
        self.items[o, slot] = ids[order]
        np.add.at(self.head, o, 1)


class PlatformState:
    """What rankers may read.  Arrays are views; rankers must not write to them.

    Attributes
    ----------
    posts : Posts
        Post columns and counters (rankers must not read ``quality``: it is latent).
    affinity : (n_users, n_topics) float32
        Interest of each user in each topic relative to their main topic.
    interest_cum : (n_users, n_topics) float32
        Row-wise cumulative interest (last column 1), for sampling a topic per slot.
    follows : CSR (n_users, n_users)
        Follower -> followee, merged from the append buffer every ``merge_hours``.
    author_posts, reshares : Rings
        Latest posts by each account, and latest posts each account reshared.
    topic_posts : Rings
        Recent posts of each topic.
    seen : SeenFilter
    now : float
        Simulated time (s) at the start of the current tick.
    """

    AUTHOR_RING = 8
    TOPIC_RING = 4096

    def __init__(self, world: World, posts: Posts, seen: SeenFilter):
        n = world.users.n
        self.world = world
        self.posts = posts
        self.affinity = world.users.affinity
        self.interest_cum = np.empty_like(world.users.interest, dtype=np.float32)
        step = 1 << 16  # in slices: float64 temporaries of all users' rows would dwarf the result
        for start in range(0, n, step):
            cum = np.cumsum(world.users.interest[start : start + step], axis=1, dtype=np.float64)
            self.interest_cum[start : start + step] = cum / cum[:, -1:]
        # Building the world freed hundreds of MB of mid-sized temporaries into the heap.
        release_free_heap()
        self.follows: sp.csr_matrix = world.follows
        self.follower_counts = world.follower_counts
        self.n_users = n
        self.n_topics = len(world.topics)
        self.author_posts = Rings(n, self.AUTHOR_RING)
        self.reshares = Rings(n, self.AUTHOR_RING)
        self.topic_posts = Rings(self.n_topics, self.TOPIC_RING)
        self.seen = seen
        self.now = 0.0
        self._pending_src: list[np.ndarray] = []
        self._pending_dst: list[np.ndarray] = []
        self._pending_keys: set[int] = set()  # few per tick: a set beats re-sorting arrays

    def is_following(self, followers: np.ndarray, followees: np.ndarray) -> np.ndarray:
        """Whether ``followers[i]`` follows ``followees[i]`` (merged graph plus pending follows).

    Both are user ids of shape ``(m,)``; returns bool of shape ``(m,)``.
    """
        found = np.empty(len(followers), dtype=bool)
        # The merged graph's rows are sorted: a binary search per pair, no per-edge key array.
        row_contains(self.follows.indptr, self.follows.indices, np.asarray(followers, dtype=np.int64),
                     np.asarray(followees, dtype=np.int64), found)
        if self._pending_keys:
            pending = self._pending_keys
            keys = followers.astype(np.int64) * self.n_users + followees
            found |= np.fromiter((int(key) in pending for key in keys), dtype=bool, count=len(keys))
        return found

    def followers_of(self, account: int) -> np.ndarray:
        """Sorted ids of every follower of ``account`` (merged graph plus pending follows)."""
        edges = np.flatnonzero(self.follows.indices == account)
        merged = np.searchsorted(self.follows.indptr, edges, side="right") - 1
        pending = [src[dst == account] for src, dst in zip(self._pending_src, self._pending_dst, strict=True)]
        return np.sort(np.concatenate([merged, *pending]))

    def add_follows(self, followers: np.ndarray, followees: np.ndarray) -> None:
        """Record new follows: pairs (``followers[i]``, ``followees[i]``), user ids of shape ``(m,)``,
    distinct and not already following."""
        self._pending_src.append(followers.astype(np.int64))
        self._pending_dst.append(followees.astype(np.int64))
        self._pending_keys.update((followers.astype(np.int64) * self.n_users + followees).tolist())
        np.add.at(self.follower_counts, followees, 1)

    def merge_follows(self) -> None:
        """Merge pending follows into the CSR graph that follower feeds read."""
        if not self._pending_src:
            return
        src, dst = np.concatenate(self._pending_src), np.concatenate(self._pending_dst)
        delta = sp.csr_matrix((np.ones(len(src), np.int8), (src, dst)), shape=self.follows.shape)
        merged = (self.follows + delta).tocsr()
        merged.data[:] = 1
        merged.sort_indices()
        self.follows = merged
        # The world's copy is only read at the start; dropping it keeps one graph alive, not two.
        self.world.follows = merged
        self._pending_src, self._pending_dst = [], []
        self._pending_keys = set()
