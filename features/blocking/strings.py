"""The string pass: Jaro-Winkler nearest names within blocks, for what embeddings miss.

Typo'd names embed badly; exhaustive Jaro-Winkler finds them, and doing it only within blocks
(birth year, phonetic surname, postal code) keeps it near-linear. Blocks larger than
`max_block` are cut into windows of names sorted alphabetically.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from features.normalize.names import phonetic


def _block_columns(frame: pd.DataFrame) -> list[pd.Series]:
    return [frame["date_of_birth"].str[:4], phonetic(frame["last_name"]), frame["postal_code"]]


def _top_pairs(pks: np.ndarray, names: list[str], k: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    # Jaro-Winkler of the distinct names only, spread back to every row: a block of travel data
    # repeats its names ("jose garcia" hundreds of times), so this scores 5% of the pairs of a
    # 100,000-mention set and gives the very same matrix (and so the same picks among ties).
    position: dict[str, int] = {}
    row_of = np.fromiter((position.setdefault(n, len(position)) for n in names), np.intp, len(names))
    distinct = list(position)
    scores = process.cdist(
        distinct, distinct, scorer=JaroWinkler.normalized_similarity, dtype=np.float32, workers=1
    )
    if len(distinct) < len(names):
        scores = scores[np.ix_(row_of, row_of)]
    np.fill_diagonal(scores, -1.0)
    k = min(k, len(names) - 1)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(names)), k)
    cols = top.ravel()
    keep = scores[rows, cols] >= threshold
    a, b = pks[rows[keep]], pks[cols[keep]]
    return np.minimum(a, b), np.maximum(a, b)


def string_pairs(
    frame: pd.DataFrame, k: int = 5, threshold: float = 0.88, max_block: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose full names are among each other's `k` most Jaro-Winkler-similar within a block."""
    names = (frame["first_name"] + " " + frame["last_name"]).str.strip()
    usable = names != ""
    windows: list[tuple[np.ndarray, list[str]]] = []
    for block in _block_columns(frame):
        table = pd.DataFrame({"pk": frame["mention_pk"], "name": names, "block": block})[
            usable & (block != "")
        ]
        table = table.sort_values(["block", "name"])
        for _, group in table.groupby("block", sort=False):
            if len(group) < 2:
                continue
            pks, texts = group["pk"].to_numpy(np.int64), group["name"].tolist()
            step = max_block // 2
            for start in range(0, len(group), step if len(group) > max_block else len(group)):
                end = min(start + max_block, len(group))
                if end - start >= 2:
                    windows.append((pks[start:end], texts[start:end]))
                if end == len(group):
                    break
    if not windows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # One window per thread, each single-threaded: rapidfuzz and numpy's partition release the GIL,
    # and this keeps both cores busy through the partition too (cdist alone parallelizes itself).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(pool.map(lambda w: _top_pairs(w[0], w[1], k, threshold), windows))
    return np.concatenate([a for a, _ in found]), np.concatenate([b for _, b in found])
