"""The string pass: Jaro-Winkler nearest names within blocks, for what embeddings miss.

Typo'd names embed badly; exhaustive Jaro-Winkler finds them, and doing it only within blocks
(birth year, phonetic surname, postal code) keeps it near-linear. Blocks larger than
`max_block` are cut into windows of names sorted alphabetically.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from features.blocking.keys import phonetic


def _block_columns(frame: pd.DataFrame) -> list[pd.Series]:
    return [frame["date_of_birth"].str[:4], phonetic(frame["last_name"]), frame["postal_code"]]


def _top_pairs(pks: np.ndarray, names: list[str], k: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Each name's k most similar others at or above `threshold` (names sorted alphabetically).

    Ties go to the nearest names after it in the block's order, wrapping round: a run of m equal
    names (a common name, or one person many times) becomes a chain through all of them rather
    than m stars on whichever k the partition happened to pick. On 100,000 travel mentions this
    took blocking recall from 0.571 to 0.671 (transitive 0.847 -> 0.932) with fewer pairs per
    mention (11.6 -> 10.5); Febrl3 and Febrl4 unchanged.
    """
    scores = process.cdist(
        names,
        names,
        scorer=JaroWinkler.normalized_similarity,
        dtype=np.float32,
        workers=-1,
        score_cutoff=threshold,  # lets Jaro-Winkler stop early; what falls below is 0
    )
    np.fill_diagonal(scores, 0.0)
    rows, cols = np.nonzero(scores >= threshold)
    # One sort key: row first (rows < 4 apart in key space never mix: the rest is below 0.2),
    # then score descending, then forward distance (1e-9 steps: below any two scores' gap).
    forward = (cols - rows) % len(names)
    key = rows * 4.0 + (1.0 - scores[rows, cols].astype(np.float64)) + forward * 1e-9
    order = np.argsort(key, kind="stable")
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < k
    a, b = pks[rows[keep]], pks[cols[keep]]
    return np.minimum(a, b), np.maximum(a, b)


def string_pairs(
    frame: pd.DataFrame, k: int = 5, threshold: float = 0.88, max_block: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose full names are among each other's `k` most Jaro-Winkler-similar within a block."""
    names = (frame["first_name"] + " " + frame["last_name"]).str.strip()
    usable = names != ""
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
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
                    a, b = _top_pairs(pks[start:end], texts[start:end], k, threshold)
                    out_a.append(a)
                    out_b.append(b)
                if end == len(group):
                    break
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_a), np.concatenate(out_b)
