"""Email and phone comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz.distance import JaroWinkler

from features.comparisons.base import PairData, similarity, where_both


class EmailComparison:
    name = "email"

    def to_features(self, pairs: PairData) -> pd.DataFrame:
        both = pairs.both_have("emails")
        dom_l, dom_r = pairs.text("email_domain")
        return pd.DataFrame(
            {
                "email_exact": where_both(both, pairs.shared("emails") > 0),
                "email_local_jw": similarity(JaroWinkler.normalized_similarity, pairs, "email_local"),
                "email_domain_eq": where_both(both, dom_l == dom_r),
                "email_missing": (~both).astype(np.float32),
            }
        )


class PhoneComparison:
    name = "phone"

    def to_features(self, pairs: PairData) -> pd.DataFrame:
        both = pairs.both_have("phone_suffixes")
        return pd.DataFrame(
            {
                "phone_exact": where_both(pairs.both_have("phones"), pairs.shared("phones") > 0),
                "phone_suffix_eq": where_both(both, pairs.shared("phone_suffixes") > 0),
                "phone_missing": (~both).astype(np.float32),
            }
        )
