"""Address comparisons: street tokens, postal code, city, country."""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from features.comparisons.base import Features, PairData, similarity, where_both


def _equal(pairs: PairData, column: str) -> np.ndarray:
    return where_both(pairs.both_text(column), pairs.equal_text(column))


class AddressComparison:
    name = "address"
    string_scorings = 2

    def to_features(self, pairs: PairData) -> Features:
        return {
            "street_token_set": similarity(fuzz.token_set_ratio, pairs, "street"),
            "postal_eq": _equal(pairs, "postal_code"),
            "city_jw": similarity(JaroWinkler.normalized_similarity, pairs, "city"),
            "country_eq": _equal(pairs, "country"),
            "address_missing": (~pairs.both_text("street")).astype(np.float32),
        }
