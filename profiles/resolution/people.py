"""How many people a set of names stands for: the count behind "this email or phone is shared".

An email is written under several spellings of one person (`michael wilson`, a typo `michael
wislon`, a nickname `mick wilson`) and on mentions with no name at all (a web session that holds
only the address). Counting the distinct strings called such an address shared, and then it
proved nothing: one person's own email, on the web session and on the guest profile, could not
join them. Counting people instead: names the rules would treat as one person's (the
`same_email_same_name` rule: last names at Jaro-Winkler 0.92 or above, first names at 0.88 or
above or the same canonical name) are one person; a mention without a name is nobody.

The count is a pure function of the set of distinct names, so the batch (over the domain's
frame) and an online call (the store's rows of that value) get the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import JaroWinkler

# (first name, last name, the canonical given names the first name may stand for), normalized
NameEntry = tuple[str, str, frozenset[str]]

# A value written under more distinct spellings than this is shared however similar they are:
# one person does not have dozens of spellings, and the store's probe stops counting here.
MOST_SPELLINGS = 32

SAME_LAST = 0.92
SAME_FIRST = 0.88


def _same_part(x: str, y: str, at_least: float) -> bool:
    if not x or not y or x == y:
        return True  # a missing part agrees with anything
    if x.split()[0] == y.split()[0]:
        return True  # a dropped second surname or middle name
    return JaroWinkler.normalized_similarity(x, y) >= at_least


def same_person_name(x: NameEntry, y: NameEntry) -> bool:
    """Whether two names may be one person's spellings (typos, nicknames, a dropped part)."""
    first_x, last_x, canonical_x = x
    first_y, last_y, canonical_y = y
    if not _same_part(last_x, last_y, SAME_LAST):
        return False
    return bool(canonical_x & canonical_y) or _same_part(first_x, first_y, SAME_FIRST)


def people_among(names: Iterable[NameEntry], most: int) -> int:
    """How many people the distinct `names` stand for, counted up to `most + 1` (enough to tell
    whether a value is written for more than `most` people).

    Nameless entries count for nobody. Full names are grouped first, each joining the first
    earlier group it matches (in sorted order, so the count never depends on row order); a name
    with one part missing adds a person only if it matches no full name's group."""
    entries = sorted({n for n in names if n[0] or n[1]}, key=lambda n: (not (n[0] and n[1]), n[0], n[1]))
    if len(entries) > MOST_SPELLINGS:
        return most + 1
    groups: list[NameEntry] = []
    for entry in entries:
        if not any(same_person_name(entry, g) for g in groups):
            groups.append(entry)
            if len(groups) > most:
                break
    return len(groups)
