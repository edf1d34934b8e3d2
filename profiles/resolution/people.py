"""How many people a set of names stands for: the count behind "this email or phone is shared".

An email is written under several spellings of one person (`michael wilson`, a typo `michael
wislon`, a nickname `mick wilson`) and on mentions with no name at all (a web session that holds
only the address). Counting the distinct strings called such an address shared, and then it
proved nothing: one person's own email, on the web session and on the guest profile, could not
join them. Counting people instead: names the rules would treat as one person's (the
`same_email_same_name` rule: last names at Jaro-Winkler 0.92 or above, first names at 0.88 or
above or the same canonical name) are one person; a mention without a name is nobody.

Two people of one name are told apart by their birth dates: an address `john.smith@gmail.com`
written for a John Smith born in 1961 and for another born in 1988 (a guessed address, a father
and son on a family email) cannot say which John Smith a third mention is, so it proves nothing
about anyone (`is_shared`): at 100,000 mentions such namesake addresses were most of the wrong
merges that rested on an email.

Both are pure functions of the set of distinct (name, birth date) entries, so the batch (over the
domain's frame) and an online call (the store's rows of that value) get the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import JaroWinkler

# (first name, last name, the canonical given names the first name may stand for, birth date as
# YYYY-MM-DD or ""), normalized
NameEntry = tuple[str, str, frozenset[str], str]

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
    first_x, last_x, canonical_x = x[0], x[1], x[2]
    first_y, last_y, canonical_y = y[0], y[1], y[2]
    if not _same_part(last_x, last_y, SAME_LAST):
        return False
    return bool(canonical_x & canonical_y) or _same_part(first_x, first_y, SAME_FIRST)


def people_among(names: Iterable[NameEntry], most: int) -> int:
    """How many people the distinct `names` stand for, counted up to `most + 1` (enough to tell
    whether a value is written for more than `most` people).

    Nameless entries count for nobody. Full names are grouped first, each joining the first
    earlier group it matches (in sorted order, so the count never depends on row order); a name
    with one part missing adds a person only if it matches no full name's group."""
    spelled = {(n[0], n[1], n[2], "") for n in names if n[0] or n[1]}  # birth dates aside
    entries = sorted(spelled, key=lambda n: (not (n[0] and n[1]), n[0], n[1]))
    if len(entries) > MOST_SPELLINGS:
        return most + 1
    groups: list[NameEntry] = []
    for entry in entries:
        if not any(same_person_name(entry, g) for g in groups):
            groups.append(entry)
            if len(groups) > most:
                break
    return len(groups)


def _one_date(x: str, y: str) -> bool:
    """Whether two birth dates may be one: equal, or day and month read the other way round
    (a US and a European system writing the same date)."""
    return x == y or (x[:4] == y[:4] and x[5:7] == y[8:10] and x[8:10] == y[5:7])


def namesakes_among(names: Iterable[NameEntry]) -> bool:
    """Whether two of the entries are one name's spellings under birth dates that are not one
    date: two people the name alone cannot tell apart."""
    dated = sorted({n for n in names if (n[0] or n[1]) and n[3]}, key=lambda n: (n[0], n[1], n[3]))
    if len(dated) > MOST_SPELLINGS:
        return True
    for i, x in enumerate(dated):
        for y in dated[i + 1 :]:
            if not _one_date(x[3], y[3]) and same_person_name(x, y):
                return True
    return False


def is_shared(names: Iterable[NameEntry], most: int) -> bool:
    """Whether a value written under these entries stands for more than `most` people, or for two
    people of one name (`namesakes_among`): either way it does not single out one person."""
    entries = set(names)
    return people_among(entries, most) > most or namesakes_among(entries)
