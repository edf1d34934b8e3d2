"""Cosine of pairs of mentions from a table of stored, normalized vectors."""

from __future__ import annotations

import numpy as np

COSINE_CHUNK = 4096


def pair_cosines(pks: np.ndarray, vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each pair (a[i], b[i]) from (sorted ids, L2-normalized rows); NaN where one is missing."""
    out = np.full(len(a), np.nan, dtype=np.float32)
    if len(pks) == 0 or len(a) == 0:
        return out
    ia, ib = np.searchsorted(pks, a), np.searchsorted(pks, b)
    ia[ia >= len(pks)] = 0
    ib[ib >= len(pks)] = 0
    ok = np.flatnonzero((pks[ia] == a) & (pks[ib] == b))
    # Small chunks keep both gathered blocks in cache: 1.1M pairs of 256-d vectors took 4.6 s in
    # chunks of 500,000 and 0.8 s in chunks of 4,096 here.
    for start in range(0, len(ok), COSINE_CHUNK):
        rows = ok[start : start + COSINE_CHUNK]
        out[rows] = np.einsum("ij,ij->i", vectors[ia[rows]], vectors[ib[rows]])
    return out
