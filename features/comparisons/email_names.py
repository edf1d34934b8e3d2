"""The first name an email names, held against a mention that has no name of its own.

A web session or a call often carries nothing but an email. The model links it to a passenger or
a guest through who booked (the session's email is the booking's contact), and with 50 labels it
learned to trust that link whoever the traveller was: on a 20,000-mention travel set 584 of the
1,335 wrong model merges that stood were such a session joined to a family member of the booker
("marie.gall@..." to Jeannot Le Gall, "jschulz54@..." to Stefan Schulz). Where the email's local
part holds the other mention's last name, what is left beside it (an initial, a first name) says
whose address it is.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from rapidfuzz.distance import OSA, JaroWinkler

from features.comparisons.base import Features, PairData
from features.normalize.names import canonical_first_names, is_known_first_name

# Last-name tokens shorter than this are found inside local parts by chance ("li", "di"); from
# `FUZZY_FROM` letters on, one typo (an edit or a transposition) still finds them.
LAST_TOKEN_MIN = 3
FUZZY_FROM = 5
# The first-name similarity at which what is left beside the last name is a spelling of the
# first name (the household veto's and `first_names_differ`'s line).
FIRST_AGREES_FROM = 0.85
_NOT_LETTERS = re.compile(r"[^a-z]+")


def _find(token: str, local: str) -> tuple[int, int] | None:
    """Where `token`, or a spelling one typo away, sits in `local`: (start, end), or None."""
    at = local.find(token)
    if at >= 0:
        return at, at + len(token)
    if len(token) < FUZZY_FROM:
        return None
    # the widest window first: "schneider" of "friedrichschneider" for "shneider", not "chneider"
    for width in (len(token) + 1, len(token), len(token) - 1):
        for start in range(0, len(local) - width + 1):
            if OSA.distance(token, local[start : start + width], score_cutoff=1) <= 1:
                return start, start + width
    return None


def _agrees(piece: str, first: str, canonical: frozenset[str]) -> bool:
    if canonical & canonical_first_names(piece):
        return True
    for name in (first, *canonical):
        if piece.startswith(name) or (len(piece) >= 3 and name.startswith(piece)):
            return True
        if len(piece) >= 3 and JaroWinkler.normalized_similarity(piece, name) >= FIRST_AGREES_FROM:
            return True
    return False


@lru_cache(maxsize=65_536)
def email_names_first(first: str, last: str, local: str) -> float:
    """1.0 if the email local part `local` holds the last name `last` beside the first name
    `first` (a spelling, a nickname or its initial), 0.0 if beside another initial or another
    known first name, NaN where it cannot tell (no last name in it, nothing beside it, or a word
    that is not a first name: 'smithfamily')."""
    letters = _NOT_LETTERS.sub("", local)
    first = _NOT_LETTERS.sub(" ", first).split(" ")[0] if first else ""
    tokens = sorted((t for t in _NOT_LETTERS.split(last) if len(t) >= LAST_TOKEN_MIN), key=len, reverse=True)
    if not letters or not first or not tokens:
        return np.nan
    found = next((span for token in tokens if (span := _find(token, letters))), None)
    if found is None:
        return np.nan
    pieces = [letters[: found[0]], letters[found[1] :]]
    for token in tokens:  # a second surname ("garcia" of "garcia lopez") is no first name
        pieces = [p.replace(token, "") for p in pieces]
    pieces = [p for p in pieces if p]
    if not pieces:
        return np.nan
    canonical = canonical_first_names(first)
    if any(_agrees(p, first, canonical) for p in pieces):
        return 1.0
    initials = {first[0], *(c[0] for c in canonical)}
    short = [p for p in pieces if len(p) <= 2]
    if short:
        return 1.0 if any(p[0] in initials for p in short) else 0.0
    # a letter left over from a last name found one typo away ("friedrichs" of "friedrichschneider")
    known = any(is_known_first_name(p) or (len(p) > 3 and is_known_first_name(p[:-1])) for p in pieces)
    return 0.0 if known else np.nan


class EmailNameComparison:
    name = "email_name"
    string_scorings = 1

    def to_features(self, pairs: PairData) -> Features:
        arrays = pairs.arrays
        vocab_first, vocab_last, vocab_local = (
            arrays.vocabularies[c] for c in ("first_name", "last_name", "email_local")
        )
        named = arrays.present["first_name"] & arrays.present["last_name"]
        nameless = ~arrays.present["first_name"] & arrays.present["email_local"]
        codes = [arrays.string_codes[c] for c in ("first_name", "last_name", "email_local")]
        out = np.full(len(pairs), np.nan, np.float32)
        for x, y in ((pairs.ia, pairs.ib), (pairs.ib, pairs.ia)):
            rows = np.flatnonzero(named[x] & nameless[y])
            if not len(rows):
                continue
            # each distinct (first name, last name, local part) once: sessions repeat
            triples = np.stack([codes[0][x[rows]], codes[1][x[rows]], codes[2][y[rows]]], axis=1)
            distinct, inverse = np.unique(triples, axis=0, return_inverse=True)
            values = np.array(
                [
                    email_names_first(vocab_first[f], vocab_last[la], vocab_local[e])
                    for f, la, e in distinct.tolist()
                ],
                np.float32,
            )
            out[rows] = values[inverse.ravel()]
        return {"email_names_first": out}
