"""Pairwise comparison vectors: one class per comparison, each vectorized over arrays of pairs.

`MentionArrays.build(frame, interactions)` is done once per frame; `compare(arrays, a, b, cosine)`
then serves one online pair and millions of batch pairs with the same code.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pandas as pd

from features.comparisons.base import (
    Comparison,
    Features,
    MentionArrays,
    PairData,
    booking_contacts_by_mention,
)
from features.comparisons.contacts import EmailComparison, PhoneComparison
from features.comparisons.dates import DateOfBirthComparison
from features.comparisons.email_names import EmailNameComparison
from features.comparisons.identifiers import IdentifierComparison
from features.comparisons.names import NameComparison
from features.comparisons.places import AddressComparison
from features.comparisons.travel import EmbeddingComparison, TravelComparison

# Which way a feature may push the match score. Agreement on a field is never evidence against a
# match and a conflict never evidence for one (the monotonicity a Fellegi-Sunter model has by
# construction); a model that learns from 50 labels may otherwise learn a sample's accident, such
# as "same postal code lowers the score". Missingness, source and booking context can go either way.
RAISES_MATCH = frozenset(
    {
        "first_jw",
        "first_lev",
        "last_jw",
        "last_lev",
        "full_token_set",
        "last_phonetic_eq",
        "first_nickname_eq",
        "first_initial_eq",
        "name_swap",
        "dob_exact",
        "dob_day_month_swapped",
        "dob_one_digit_off",
        "email_exact",
        "email_local_jw",
        "email_domain_eq",
        "email_names_first",
        "phone_exact",
        "phone_suffix_eq",
        "street_token_set",
        "postal_eq",
        "city_jw",
        "country_eq",
        "loyalty_eq",
        "document_eq",
        "document_one_off",
        "shared_strong_ids",
        "embedding_cosine",
        "booker_contact_eq",
        "same_booker",
        "booked_from_home",
        "same_booker_home",
    }
)
LOWERS_MATCH = frozenset(
    {
        "dob_year_gap",
        "dob_conflict",
        "document_conflict",
        "loyalty_conflict",
        "gender_conflict",
        "travelled_together",
    }
)

# Whether a field is written on one side only: what a Fellegi-Sunter model reads as "cannot be
# compared" (its level 0, neither for nor against a match).
MISSINGNESS = frozenset(
    {"first_missing", "last_missing", "dob_missing", "email_missing", "phone_missing", "address_missing"}
)


# What a pair can agree on besides the name, as (feature, at least): a contact, a birth date or a
# near-typo of it, an identifier, an address, a booking. A name is no identity: the resolver wants
# one of these before a model's merge stands, and blocking evaluation reports its recall over the
# true pairs that have one.
BEYOND_NAME = (
    ("email_exact", 1.0),
    ("phone_exact", 1.0),
    ("phone_suffix_eq", 1.0),
    ("dob_exact", 1.0),
    ("dob_day_month_swapped", 1.0),
    ("dob_one_digit_off", 1.0),
    ("loyalty_eq", 1.0),
    ("document_eq", 1.0),
    ("document_one_off", 1.0),
    ("postal_eq", 1.0),
    ("street_token_set", 0.8),
    ("shared_booking", 1.0),
    ("booker_contact_eq", 1.0),
    ("same_booker", 1.0),
)


# The part of that evidence that rests on a contact value (an email, a phone, a booking's contact):
# it proves nothing when the value is written for many people (a family or desk address), which
# only the whole domain can tell (`pipelines.decide.contact_evidence`, `RuleSet.any_personal`).
CONTACT_EVIDENCE = frozenset(
    {"email_exact", "phone_exact", "phone_suffix_eq", "booker_contact_eq", "same_booker"}
)


# What one person holds whatever their family shares (contacts, an address, bookings): a birth
# date, a loyalty id, a document (or its number one typo away).
IDENTITY_EVIDENCE = (("dob_exact", 1.0), ("loyalty_eq", 1.0), ("document_eq", 1.0), ("document_one_off", 1.0))
# First names this far apart, and not a nickname of each other, are two people (the rules'
# household veto draws the line at the same place).
FIRST_NAMES_DIFFER_BELOW = 0.85


def first_names_differ(features: pd.DataFrame) -> np.ndarray:
    """Whether each pair's first names are another person's (not a typo, not a nickname, not the
    first and last names written the other way round), or one side has no name and its email
    names another first name beside the other's last name (`email_names_first`); False where
    neither can tell."""
    first = features["first_jw"].to_numpy(np.float64)
    nickname = features["first_nickname_eq"].to_numpy(np.float64) == 1
    swapped = features["name_swap"].to_numpy(np.float64) == 1
    by_email = (
        features["email_names_first"].to_numpy(np.float64) == 0
        if "email_names_first" in features
        else np.zeros(len(features), bool)
    )
    return ((first < FIRST_NAMES_DIFFER_BELOW) & ~nickname & ~swapped) | by_email


def another_person(features: pd.DataFrame) -> np.ndarray:
    """Whether each pair's first names say two people (`first_names_differ`) and nothing only one
    person holds says otherwise (`agrees_on_identity`)."""
    return first_names_differ(features) & ~agrees_on_identity(features)


def model_may_merge(features: pd.DataFrame) -> np.ndarray:
    """Whether the resolver would let a model merge of each pair stand, as far as its comparison
    vector tells: something besides the name in common, and not another person. (Whether a
    contact behind that something is written for many people is asked of the domain, by
    `pipelines.decide`.)"""
    return agrees_beyond_name(features) & ~another_person(features)


def agrees_on_identity(features: pd.DataFrame) -> np.ndarray:
    """Whether each pair shares something only one person holds (see `IDENTITY_EVIDENCE`)."""
    out = np.zeros(len(features), bool)
    for column, at_least in IDENTITY_EVIDENCE:
        out |= features[column].to_numpy(np.float64) >= at_least
    return out


def agrees_beyond_name(features: pd.DataFrame, without: frozenset[str] = frozenset()) -> np.ndarray:
    """Whether each pair agrees on something besides the name (see `BEYOND_NAME`), not counting
    the features in `without`."""
    out = np.zeros(len(features), bool)
    for column, at_least in BEYOND_NAME:
        if column in features and column not in without:
            out |= features[column].to_numpy(np.float64) >= at_least
    return out


def feature_sign(name: str) -> int:
    """+1 if the feature may only raise the match score, -1 if only lower it, 0 if either."""
    return 1 if name in RAISES_MATCH else -1 if name in LOWERS_MATCH else 0


COMPARISONS: tuple[Comparison, ...] = (
    NameComparison(),
    DateOfBirthComparison(),
    EmailComparison(),
    EmailNameComparison(),
    PhoneComparison(),
    AddressComparison(),
    IdentifierComparison(),
    EmbeddingComparison(),
    TravelComparison(),
)


# An online request (one record against its candidates, a few hundred in a crowd of common names)
# stays on the caller's thread, where a thread hand-off would be most of its cost. From a few
# thousand pairs up the comparisons run side by side: rapidfuzz releases the GIL while it scores,
# so one comparison's string scoring overlaps another's numpy work (on a 2-core machine 1.25M ->
# 1.93M pairs/s on a 500,000-pair travel batch). With the other core busy, as it is under
# concurrent requests, the hand-off cost more than it gave below about 2,000 pairs (325 pairs of
# one online crowd: 1.22 ms side by side, 0.99 ms on one thread; 3,000 pairs: 3.1 against 3.6).
PARALLEL_FROM = 2000


def _threads() -> int:
    return min(len(COMPARISONS), os.cpu_count() or 1)


@cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process: comparisons are short, so starting threads per call would show."""
    return ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="upt-compare")


# A forked child (a pre-forking server, a worker pool) inherits the pool without its threads.
os.register_at_fork(after_in_child=_pool.cache_clear)


def compare(
    arrays: MentionArrays,
    a: np.ndarray,
    b: np.ndarray,
    cosine: np.ndarray | None = None,
    comparisons: tuple[Comparison, ...] = COMPARISONS,
) -> pd.DataFrame:
    """The comparison vector of every pair (ids a[i], b[i]): one float32 column per feature."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    cos = np.full(len(a), np.nan, np.float32) if cosine is None else np.asarray(cosine, np.float32)
    data = PairData(arrays, arrays.positions(a), arrays.positions(b), cos)
    if len(a) >= PARALLEL_FROM and len(comparisons) > 1 and _threads() > 1:
        heaviest_first = sorted(comparisons, key=lambda c: -c.string_scorings)
        running = {c.name: _pool().submit(c.to_features, data) for c in heaviest_first}
        parts = [running[c.name].result() for c in comparisons]
    else:
        parts = [c.to_features(data) for c in comparisons]
    features = {name: values for part in parts for name, values in part.items()}
    # column-major: each feature is written, and later read, as one contiguous run (the layout
    # pandas keeps a float block in, so the frame wraps it without a copy)
    matrix = np.empty((len(a), len(features)), np.float32, order="F")
    for column, values in enumerate(features.values()):
        matrix[:, column] = values
    return pair_frame(a, b, matrix, list(features))


def pair_frame(a: np.ndarray, b: np.ndarray, matrix: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The frame `compare` returns: mention_a, mention_b, then the float32 feature columns of
    `matrix` (column-major, wrapped without a copy)."""
    out = pd.DataFrame(matrix, columns=columns, copy=False)
    out.insert(0, "mention_b", np.asarray(b, np.int64))
    out.insert(0, "mention_a", np.asarray(a, np.int64))
    return out


__all__ = [
    "BEYOND_NAME",
    "COMPARISONS",
    "CONTACT_EVIDENCE",
    "FIRST_NAMES_DIFFER_BELOW",
    "IDENTITY_EVIDENCE",
    "LOWERS_MATCH",
    "RAISES_MATCH",
    "Comparison",
    "Features",
    "MentionArrays",
    "PairData",
    "agrees_beyond_name",
    "agrees_on_identity",
    "another_person",
    "booking_contacts_by_mention",
    "compare",
    "feature_sign",
    "first_names_differ",
    "model_may_merge",
    "pair_frame",
]
