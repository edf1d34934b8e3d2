"""Strong identifiers (loyalty, documents) and the conflicts that rule a match out."""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import OSA

from features.comparisons.base import Features, PairData, where_both


class IdentifierComparison:
    name = "identifiers"
    string_scorings = 1

    def to_features(self, pairs: PairData) -> Features:
        loyalty, documents = pairs.shared("loyalty"), pairs.shared("documents")
        emails, phones = pairs.shared("emails"), pairs.shared("phones")
        # Two documents of one kind (two passports) that share no number: different people.
        document_conflict = (pairs.shared("document_kinds") > 0) & (documents == 0)
        loyalty_conflict = (pairs.shared("loyalty_programs") > 0) & (loyalty == 0)
        # A document number one typo away (a digit changed, two swapped): the same document
        # mistyped, as a birth date one digit off is the same birth date.
        typo = np.zeros(len(pairs), bool)
        differing = pairs.distinct("document")
        if differing.mask.any():
            typo[differing.mask] = differing.score(OSA.distance) <= 1
        return {
            "document_one_off": where_both(pairs.both_text("document"), typo & (documents == 0)),
            "loyalty_eq": where_both(pairs.both_have("loyalty"), loyalty > 0),
            "document_eq": where_both(pairs.both_have("documents"), documents > 0),
            "shared_strong_ids": loyalty + documents + emails + phones,
            "document_conflict": document_conflict.astype(np.float32),
            "loyalty_conflict": loyalty_conflict.astype(np.float32),
            "gender_conflict": (pairs.both_text("gender") & ~pairs.equal_text("gender")).astype(np.float32),
            "same_source": pairs.equal_text("source").astype(np.float32),
        }
