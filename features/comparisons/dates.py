"""Date-of-birth comparisons: exact, day/month swapped, one digit off, year gap, conflict."""

from __future__ import annotations

import numpy as np

from features.comparisons.base import Features, PairData, where_both


def _year(d: np.ndarray) -> np.ndarray:
    return d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]


class DateOfBirthComparison:
    name = "date_of_birth"
    string_scorings = 0

    def to_features(self, pairs: PairData) -> Features:
        a, b = pairs.arrays.dob[pairs.ia], pairs.arrays.dob[pairs.ib]
        both = (a[:, 0] >= 0) & (b[:, 0] >= 0)
        differing = (a != b).sum(axis=1)
        exact = both & (differing == 0)
        same_year = (a[:, :4] == b[:, :4]).all(1)
        swapped = (
            both & same_year & (a[:, 4:6] == b[:, 6:8]).all(1) & (a[:, 6:8] == b[:, 4:6]).all(1) & ~exact
        )
        one_off = both & (differing == 1)
        return {
            "dob_exact": where_both(both, exact),
            "dob_day_month_swapped": where_both(both, swapped),
            "dob_one_digit_off": where_both(both, one_off),
            "dob_year_gap": where_both(both, np.abs(_year(a) - _year(b))),
            "dob_conflict": (both & ~exact & ~swapped & ~one_off).astype(np.float32),
            "dob_missing": (~both).astype(np.float32),
        }
