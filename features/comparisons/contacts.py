"""Email and phone comparisons."""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import JaroWinkler

from features.comparisons.base import Features, PairData, similarity, where_both


class EmailComparison:
    name = "email"
    string_scorings = 1

    def to_features(self, pairs: PairData) -> Features:
        both = pairs.both_have("emails")
        return {
            "email_exact": where_both(both, pairs.shared("emails") > 0),
            "email_local_jw": similarity(JaroWinkler.normalized_similarity, pairs, "email_local"),
            "email_domain_eq": where_both(both, pairs.equal_text("email_domain")),
            "email_missing": (~both).astype(np.float32),
        }


class PhoneComparison:
    name = "phone"
    string_scorings = 0

    def to_features(self, pairs: PairData) -> Features:
        both = pairs.both_have("phone_suffixes")
        return {
            "phone_exact": where_both(pairs.both_have("phones"), pairs.shared("phones") > 0),
            "phone_suffix_eq": where_both(both, pairs.shared("phone_suffixes") > 0),
            "phone_missing": (~both).astype(np.float32),
        }
