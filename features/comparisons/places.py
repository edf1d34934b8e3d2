"""Address comparisons: street tokens, postal code, city, country."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from features.comparisons.base import PairData, similarity, where_both


def _equal(pairs: PairData, column: str) -> np.ndarray:
    a, b = pairs.text(column)
    return where_both(pairs.both_text(column), a == b)


class AddressComparison:
    name = "address"

    def to_features(self, pairs: PairData) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "street_token_set": similarity(fuzz.token_set_ratio, pairs, "street"),
                "postal_eq": _equal(pairs, "postal_code"),
                "city_jw": similarity(JaroWinkler.normalized_similarity, pairs, "city"),
                "country_eq": _equal(pairs, "country"),
                "address_missing": (~pairs.both_text("street")).astype(np.float32),
            }
        )
