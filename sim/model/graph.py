"""Compiled helpers for the follow graph in CSR form (row = follower, column = followee).

The graph is the largest structure of a big world (tens of edges per user), so it is built
and queried without per-edge int64 temporaries: indices stay int32, rows are sorted and
de-duplicated in place.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numba
import numpy as np
import scipy.sparse as sp


@numba.njit(cache=True)
def compact_rows(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Sort each row of a CSR pattern, drop self-follows and repeats, and pack the rows left.

    ``indices`` (shape ``(nnz,)``) is rewritten in place; returns the new ``indptr``
    (shape ``(n + 1,)``, int64).  The packed rows are ``indices[: new_indptr[-1]]``.
    """
    n = len(indptr) - 1
    out = np.empty(n + 1, np.int64)
    out[0] = 0
    write = 0
    for row in range(n):
        segment = np.sort(indices[indptr[row] : indptr[row + 1]])
        last = -1
        for col in segment:
            if col != row and col != last:
                indices[write] = col
                write += 1
            last = col
        out[row + 1] = write
    return out


@numba.njit(cache=True)
def _scatter_by_row(src: np.ndarray, dst: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> None:
    """Write edge ``i``'s target ``dst[i]`` into row ``src[i]`` of ``indices`` (shape ``(m,)``), rows
    laid out by ``indptr`` (shape ``(n + 1,)``), in edge order within a row."""
    cursor = indptr[:-1].copy()
    for i in range(len(src)):
        indices[cursor[src[i]]] = dst[i]
        cursor[src[i]] += 1


def csr_pattern(indptr: np.ndarray, indices: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR follower -> followee (data all 1, int8) from unsorted rows that may repeat or self-follow.

    Parameters
    ----------
    indptr : (n + 1,) int
        Row bounds into ``indices``.
    indices : (nnz,) int32
        Followee ids; consumed: rewritten in place.
    n : int
        Number of users.

    Returns
    -------
    csr_matrix, (n, n) int8
        Sorted rows, no self-follows, no repeats.
    """
    packed = compact_rows(indptr, indices)
    nnz = int(packed[-1])
    kept = indices[:nnz].copy()
    return sp.csr_matrix((np.ones(nnz, dtype=np.int8), kept, packed), shape=(n, n))


def csr_from_edges(src: np.ndarray, dst: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR follower -> followee from edge lists (shape ``(m,)`` each); drops self-follows and repeats."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    indices = np.empty(len(src), dtype=np.int32)
    _scatter_by_row(np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int32), indptr, indices)
    return csr_pattern(indptr, indices, n)


@numba.njit(cache=True)
def row_contains(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 out: np.ndarray) -> None:
    """``out[i]``: whether sorted CSR row ``rows[i]`` holds ``cols[i]`` (binary search).

    ``indptr`` and ``indices`` are the CSR arrays; ``rows``, ``cols`` (int64) and ``out`` (bool)
    have shape ``(m,)``.
    """
    for i in range(len(rows)):
        lo, hi = indptr[rows[i]], indptr[rows[i] + 1]
        col = cols[i]
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < col:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo < indptr[rows[i] + 1] and indices[lo] == col


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Building a big graph frees hundreds of MB of mid-sized temporaries that glibc keeps in the
    heap, where they would count toward the run's peak resident memory for its whole length.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass
