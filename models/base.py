"""The match-model interface: the probability that a pair of mentions is one person.

Models follow the scikit-learn estimator contract (`__init__` stores arguments, `fit` returns
self, learned state ends in `_`), take the comparison-vector DataFrame of `features.comparisons`
and return calibrated probabilities.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd


class MatchModel(Protocol):
    name: str

    def fit(self, features: pd.DataFrame, labels: np.ndarray) -> MatchModel: ...

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(match) for each row, calibrated."""
        ...

    def explain(self, features: pd.DataFrame) -> pd.DataFrame:
        """Each feature's contribution to each row's score (plus a `bias` column)."""
        ...


def feature_matrix(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The model's columns as float32, in the order it was trained on (missing columns -> NaN)."""
    out = np.full((len(features), len(columns)), np.nan, dtype=np.float32)
    for i, column in enumerate(columns):
        if column in features:
            out[:, i] = features[column].to_numpy(np.float32)
    return out
