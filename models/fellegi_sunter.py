"""An unsupervised Fellegi-Sunter model of the candidate pool, fitted by EM without a label:
the prior that the labels correct.

Fifty labels chosen for being hard teach a classifier a sample's accidents: on one generated
travel set one labelling seed's model gave the full name and a home shared through the bookings
almost no weight (0.0 and 0.09 standardized, against 0.47 and 1.12 for the next seed's) and its
profiles fell to pairwise F1 0.73 where the other seeds gave 0.89-0.92. The candidate pool itself, hundreds of thousands of
pairs, says much of what those labels cannot: each pair is a draw from a two-component mixture
(match, non-match), each component a product of independent per-comparison level distributions
(m and u), fitted by expectation-maximization over every candidate pair, as Splink and fastLink
do. `models.classifiers.LogisticMatcher` starts from this model's log-odds and learns from the
labels only how to correct them, so what the labels never showed keeps the pool's weight.

The comparisons are coarse levels read from UPT's comparison vectors (`comparison_levels`):
the first and last names, the birth date, email, whether an email names a mention that has no
other name, phone, address, loyalty id, document, the booking context and gender. Level 0 means
the pair cannot be compared on that field and adds nothing (missing is neither agreement nor
disagreement). Names are not adjusted for their
frequency (Splink's term-frequency adjustment), and the comparisons are taken as independent,
which a family is not (one surname, one home, one booking contact): the labels correct that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.comparisons import BEYOND_NAME, FIRST_NAMES_DIFFER_BELOW

FORMAT_VERSION = 1
MAX_ITERATIONS = 200
TOLERANCE = 1e-7
# Added to every level's count in the M step (a Dirichlet prior): a level no pair reaches gets a
# small probability instead of a log of zero.
PSEUDO_COUNT = 1.0
# the lines the resolver's guards draw: first names this close are one person's (a typo), a street
# this close is an address in common (`features.comparisons`)
FIRST_NAME_CLOSE = FIRST_NAMES_DIFFER_BELOW
STREET_CLOSE = dict(BEYOND_NAME)["street_token_set"]
LAST_NAME_CLOSE = 0.85


# The comparison columns the levels read (taken at once for a few pairs; any other is read alone).
READS = (
    "address_missing",
    "booker_contact_eq",
    "dob_day_month_swapped",
    "dob_exact",
    "dob_missing",
    "dob_one_digit_off",
    "document_conflict",
    "document_eq",
    "document_one_off",
    "email_exact",
    "email_missing",
    "email_names_first",
    "first_jw",
    "first_nickname_eq",
    "gender_conflict",
    "last_jw",
    "last_phonetic_eq",
    "loyalty_conflict",
    "loyalty_eq",
    "name_swap",
    "phone_exact",
    "phone_missing",
    "phone_suffix_eq",
    "postal_eq",
    "same_booker",
    "same_booker_home",
    "street_token_set",
    "travelled_together",
)
# Up to this many pairs the columns are taken out of the frame in one indexing: one request's few
# dozen pairs paid 0.8 ms for 28 column lookups (0.13 ms as one); a batch's millions are taken
# column by column, as one float64 copy of all 28 would be gigabytes.
AT_ONCE = 100_000


def _columns(features: pd.DataFrame) -> Callable[[str], np.ndarray]:
    """name -> that comparison column as float64 (NaN where the frame has no such column)."""
    missing = np.full(len(features), np.nan)

    def alone(name: str) -> np.ndarray:
        return features[name].to_numpy(np.float64) if name in features else missing

    if len(features) > AT_ONCE:
        return alone
    present = [c for c in READS if c in features.columns]
    matrix = features[present].to_numpy(np.float64)
    found = {c: matrix[:, j] for j, c in enumerate(present)}
    return lambda name: found[name] if name in found else alone(name)


def comparison_levels(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per comparison, each pair's level: 0 where it cannot be compared, then rising with
    agreement (1 = disagrees)."""
    n = len(features)
    out: dict[str, np.ndarray] = {}
    column = _columns(features)

    first = column("first_jw")
    level = np.where(np.isnan(first), 0, 1)
    level[first >= FIRST_NAME_CLOSE] = 2
    level[(column("first_nickname_eq") == 1) | (column("name_swap") >= 0.9)] = 3
    level[first >= 0.999] = 4
    out["first_name"] = level

    last = column("last_jw")
    level = np.where(np.isnan(last), 0, 1)
    level[(last >= LAST_NAME_CLOSE) | (column("last_phonetic_eq") == 1)] = 2
    level[last >= 0.999] = 3
    out["last_name"] = level

    level = np.where(column("dob_missing") == 0, 1, 0)
    level[(column("dob_one_digit_off") == 1) | (column("dob_day_month_swapped") == 1)] = 2
    level[column("dob_exact") == 1] = 3
    out["birth_date"] = level

    level = np.where(column("email_missing") == 0, 1, 0)
    level[column("email_exact") == 1] = 2
    out["email"] = level

    # a mention with nothing but an email against one with a name: whether the email's local
    # part names them (a web session's only tie to a guest)
    named = column("email_names_first")
    out["email_name"] = np.where(named == 1, 2, np.where(named == 0, 1, 0))

    level = np.where(column("phone_missing") == 0, 1, 0)
    level[column("phone_suffix_eq") == 1] = 2
    level[column("phone_exact") == 1] = 3
    out["phone"] = level

    street, postal = column("street_token_set"), column("postal_eq")
    level = np.where(column("address_missing") == 0, 1, 0)
    level[(street >= STREET_CLOSE) | (postal == 1)] = 2
    level[(street >= STREET_CLOSE) & (postal == 1)] = 3
    out["address"] = level

    level = np.zeros(n, np.int64)
    level[column("loyalty_conflict") == 1] = 1
    level[column("loyalty_eq") == 1] = 2
    out["loyalty"] = level

    level = np.zeros(n, np.int64)
    level[column("document_conflict") == 1] = 1
    level[(column("document_eq") == 1) | (column("document_one_off") == 1)] = 2
    out["document"] = level

    # booking context: on one booking together (two people), bookings that share nothing, booked
    # from one home, booked from one contact
    home, booker = column("same_booker_home"), column("same_booker")
    level = np.where(~np.isnan(home) | ~np.isnan(booker), 2, 0)
    level[home == 1] = 3
    level[(booker == 1) | (column("booker_contact_eq") == 1)] = 4
    level[column("travelled_together") == 1] = 1
    out["booking"] = level

    gender = column("gender_conflict")
    out["gender"] = np.where(gender == 1, 1, np.where(gender == 0, 2, 0))
    return {name: np.asarray(level, np.int64) for name, level in out.items()}


@dataclass
class FellegiSunter:
    """Fitted mixture: `match_share` (lambda, the share of candidate pairs that are matches) and,
    per comparison, the probability of each level among matches (`m`) and non-matches (`u`);
    level 0 (not comparable) is left out of both."""

    match_share: float
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    iterations: int = 0

    @classmethod
    def fit(cls, features: pd.DataFrame, max_iterations: int = MAX_ITERATIONS) -> FellegiSunter:
        """EM over the distinct level patterns of `features` (a few thousand patterns stand for
        millions of pairs), from a start where matches agree and non-matches do not."""
        levels = comparison_levels(features)
        names = list(levels)
        if len(features) == 0:
            return cls(0.0, {c: [] for c in names}, {c: [] for c in names})
        patterns, counts = distinct_patterns(np.column_stack([levels[c] for c in names]))
        weights = counts.astype(np.float64)
        sizes = [int(patterns[:, j].max()) for j in range(len(names))]
        m: list[np.ndarray] = [np.linspace(1.0, 3.0, k) ** 2 if k else np.zeros(0) for k in sizes]
        u: list[np.ndarray] = [np.linspace(3.0, 1.0, k) ** 2 if k else np.zeros(0) for k in sizes]
        m = [v / v.sum() if len(v) else v for v in m]
        u = [v / v.sum() if len(v) else v for v in u]
        share = 0.1
        iterations = 0
        for iterations in range(1, max_iterations + 1):  # noqa: B007 - the count is kept
            g = _posterior(patterns, share, m, u)
            new_share = float(np.clip((g * weights).sum() / weights.sum(), 1e-6, 1 - 1e-6))
            new_m: list[np.ndarray] = []
            new_u: list[np.ndarray] = []
            for j, k in enumerate(sizes):
                lev = patterns[:, j]
                seen = lev > 0
                mm = np.bincount(lev[seen] - 1, weights=(g * weights)[seen], minlength=k) + PSEUDO_COUNT
                uu = np.bincount(lev[seen] - 1, weights=((1 - g) * weights)[seen], minlength=k) + PSEUDO_COUNT
                new_m.append(mm / mm.sum() if k else mm)
                new_u.append(uu / uu.sum() if k else uu)
            change = max(
                [abs(new_share - share)]
                + [float(np.abs(a - b).max()) for a, b in zip(new_m + new_u, m + u, strict=True) if len(a)]
            )
            share, m, u = new_share, new_m, new_u
            if change < TOLERANCE:
                break
        return cls(
            share,
            {c: v.tolist() for c, v in zip(names, m, strict=True)},
            {c: v.tolist() for c, v in zip(names, u, strict=True)},
            iterations,
        )

    def log_bayes_factors(self, features: pd.DataFrame) -> np.ndarray:
        """Each pair's log-likelihood ratio, match against non-match, summed over comparisons."""
        out = np.zeros(len(features))
        for name, level in comparison_levels(features).items():
            ratio = np.log(np.asarray(self.m.get(name, []), np.float64)) - np.log(
                np.asarray(self.u.get(name, []), np.float64)
            )
            known = (level > 0) & (level <= len(ratio))
            out[known] += ratio[level[known] - 1]
        return out

    def match_probability(self, features: pd.DataFrame) -> np.ndarray:
        """The posterior probability that each pair is a match, under the pool's match share."""
        from scipy.special import expit

        if not 0.0 < self.match_share < 1.0:
            return np.zeros(len(features))
        return np.asarray(expit(self.log_odds(features)), np.float64)

    def log_odds(self, features: pd.DataFrame) -> np.ndarray:
        """The posterior log-odds of a match: the pool's prior odds times the Bayes factors (0
        where the pool held no match or nothing else)."""
        if not 0.0 < self.match_share < 1.0:
            return np.zeros(len(features))
        return np.log(self.match_share / (1.0 - self.match_share)) + self.log_bayes_factors(features)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FellegiSunter:
        return cls(
            float(data["match_share"]), dict(data["m"]), dict(data["u"]), int(data.get("iterations", 0))
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "match_share": self.match_share,
            "m": self.m,
            "u": self.u,
            "iterations": self.iterations,
        }


def distinct_patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a matrix of small non-negative levels and how often each occurs, in
    lexicographic order: `np.unique(levels, axis=0, return_counts=True)`, row for row. Each row is
    read as one number (the first column the most significant digit), so the sort is of one
    integer per pair: 0.2 s instead of 2.7 s for 1.26 million pairs of 12 comparisons."""
    if levels.size == 0:
        return np.unique(levels, axis=0, return_counts=True)
    radix = levels.max(axis=0).astype(np.int64) + 1
    if levels.min() < 0 or np.log2(radix.astype(np.float64)).sum() >= 62:  # not digits of one int64
        return np.unique(levels, axis=0, return_counts=True)
    codes = np.zeros(len(levels), np.int64)
    for j in range(levels.shape[1]):
        codes = codes * radix[j] + levels[:, j]
    distinct, counts = np.unique(codes, return_counts=True)
    patterns = np.empty((len(distinct), levels.shape[1]), levels.dtype)
    for j in reversed(range(levels.shape[1])):
        distinct, patterns[:, j] = np.divmod(distinct, radix[j])
    return patterns, counts


def _posterior(patterns: np.ndarray, share: float, m: list[np.ndarray], u: list[np.ndarray]) -> np.ndarray:
    log_odds = np.full(len(patterns), np.log(share / (1.0 - share)))
    for j, (mj, uj) in enumerate(zip(m, u, strict=True)):
        lev = patterns[:, j]
        seen = lev > 0
        if len(mj):
            log_odds[seen] += np.log(mj[lev[seen] - 1]) - np.log(uj[lev[seen] - 1])
    return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
