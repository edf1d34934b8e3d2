"""Name comparisons: string similarities, phonetics, nicknames, swapped first and last names."""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from features.comparisons.base import DistinctPairs, Features, PairData, similarity, where_both


def _crossed(pairs: PairData, mask: np.ndarray, left: str, right: str) -> np.ndarray:
    """Jaro-Winkler of one column of the left mention against another of the right one."""
    arrays = pairs.arrays
    return DistinctPairs.of(
        mask,
        arrays.string_codes[left][pairs.ia],
        arrays.vocabularies[left],
        arrays.string_codes[right][pairs.ib],
        arrays.vocabularies[right],
    ).score(JaroWinkler.normalized_similarity)


class NameComparison:
    name = "name"
    string_scorings = 7

    def to_features(self, pairs: PairData) -> Features:
        both_first, both_last = pairs.both_text("first_name"), pairs.both_text("last_name")
        first_jw = similarity(JaroWinkler.normalized_similarity, pairs, "first_name")
        last_jw = similarity(JaroWinkler.normalized_similarity, pairs, "last_name")
        # Swapped names only matter where the straight order does not already match.
        swap = np.zeros(len(pairs), np.float32)
        check = both_first & both_last & (np.fmin(first_jw, last_jw) < 0.9)
        if check.any():
            swap[check] = np.minimum(
                _crossed(pairs, check, "first_name", "last_name"),
                _crossed(pairs, check, "last_name", "first_name"),
            )
        sound = pairs.arrays.ints["last_phonetic"]
        initials = pairs.arrays.ints["first_initial"]
        initial = initials[pairs.ia] == initials[pairs.ib]
        return {
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
