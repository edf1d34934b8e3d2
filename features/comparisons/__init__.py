"""Pairwise comparison vectors: one class per comparison, each vectorized over arrays of pairs.

`MentionArrays.build(frame, interactions)` is done once per frame; `compare(arrays, a, b, cosine)`
then serves one online pair and millions of batch pairs with the same code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.comparisons.base import Comparison, MentionArrays, PairData
from features.comparisons.contacts import EmailComparison, PhoneComparison
from features.comparisons.dates import DateOfBirthComparison
from features.comparisons.identifiers import IdentifierComparison
from features.comparisons.names import NameComparison
from features.comparisons.places import AddressComparison
from features.comparisons.travel import EmbeddingComparison, TravelComparison

COMPARISONS: tuple[Comparison, ...] = (
    NameComparison(),
    DateOfBirthComparison(),
    EmailComparison(),
    PhoneComparison(),
    AddressComparison(),
    IdentifierComparison(),
    EmbeddingComparison(),
    TravelComparison(),
)


def compare(
    arrays: MentionArrays,
    a: np.ndarray,
    b: np.ndarray,
    cosine: np.ndarray | None = None,
    comparisons: tuple[Comparison, ...] = COMPARISONS,
) -> pd.DataFrame:
    """The comparison vector of every pair (ids a[i], b[i]): one float32 column per feature."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    cos = np.full(len(a), np.nan, np.float32) if cosine is None else np.asarray(cosine, np.float32)
    data = PairData(arrays, arrays.positions(a), arrays.positions(b), cos)
    parts = [c.to_features(data) for c in comparisons]
    columns = [name for part in parts for name in part.columns]
    matrix = (
        np.column_stack([part.to_numpy(np.float32) for part in parts]) if parts else np.zeros((len(a), 0))
    )
    out = pd.DataFrame(matrix, columns=columns, copy=False)
    out.insert(0, "mention_b", b)
    out.insert(0, "mention_a", a)
    return out


__all__ = ["COMPARISONS", "Comparison", "MentionArrays", "PairData", "compare"]
