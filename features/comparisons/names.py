"""Name comparisons: string similarities, phonetics, nicknames, swapped first and last names."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from features.comparisons.base import PairData, similarity, where_both


class NameComparison:
    name = "name"

    def to_features(self, pairs: PairData) -> pd.DataFrame:
        first_l, first_r = pairs.text("first_name")
        last_l, last_r = pairs.text("last_name")
        both_first, both_last = pairs.both_text("first_name"), pairs.both_text("last_name")
        first_jw = similarity(JaroWinkler.normalized_similarity, pairs, "first_name")
        last_jw = similarity(JaroWinkler.normalized_similarity, pairs, "last_name")
        # Swapped names only matter where the straight order does not already match.
        swap = np.zeros(len(pairs), np.float32)
        check = both_first & both_last & (np.fmin(first_jw, last_jw) < 0.9)
        if check.any():
            jw = JaroWinkler.normalized_similarity
            swap[check] = np.minimum(
                process.cpdist(first_l[check], last_r[check], scorer=jw, dtype=np.float32, workers=-1),
                process.cpdist(last_l[check], first_r[check], scorer=jw, dtype=np.float32, workers=-1),
            )
        sound = pairs.arrays.ints["last_phonetic"]
        initials = pairs.arrays.ints["first_initial"]
        initial = initials[pairs.ia] == initials[pairs.ib]
        return pd.DataFrame(
            {
                "first_jw": first_jw,
                "first_lev": similarity(Levenshtein.normalized_similarity, pairs, "first_name"),
                "last_jw": last_jw,
                "last_lev": similarity(Levenshtein.normalized_similarity, pairs, "last_name"),
                "full_token_set": similarity(fuzz.token_set_ratio, pairs, "full_name"),
                "last_phonetic_eq": where_both(both_last, sound[pairs.ia] == sound[pairs.ib]),
                "first_nickname_eq": where_both(both_first, pairs.shared("first_canonical") > 0),
                "first_initial_eq": where_both(both_first, initial),
                "name_swap": where_both(both_first & both_last, swap),
                "first_missing": (~both_first).astype(np.float32),
                "last_missing": (~both_last).astype(np.float32),
            }
        )
