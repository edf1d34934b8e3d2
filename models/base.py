"""What every match model shares: its input, the comparison vectors as a float matrix.

The interface itself is `models.classifiers.Matcher` (the probability that a pair of mentions is
one person), following the scikit-learn estimator contract: `__init__` stores arguments, `fit`
returns self, learned state ends in `_`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def feature_matrix(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The model's columns as float32, in the order it was trained on (missing columns -> NaN)."""
    if all(c in features for c in columns):  # one indexing, not one per column (43 of them)
        return np.ascontiguousarray(features[columns].to_numpy(np.float32))
    out = np.empty((len(features), len(columns)), dtype=np.float32)
    for i, column in enumerate(columns):
        out[:, i] = features[column].to_numpy(np.float32) if column in features else np.nan
    return out
