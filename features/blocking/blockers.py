"""The blockers that propose candidate pairs, as bit flags so a pair records all of its proposers."""

from __future__ import annotations

from enum import IntFlag


class Blocker(IntFlag):
    EMAIL = 1
    PHONE = 2
    LOYALTY = 4
    DOCUMENT = 8
    NAME_DOB = 16
    PHONETIC_YEAR = 32
    NAME = 64  # first and last name as an unordered pair: also catches swapped names
    EMBEDDING = 128
    STRING = 256
    TRAVEL = 512  # the two mentions share a booking, PNR, web session or call
    DOB_POSTAL = 1024  # date of birth + postal code: a person whose name was misspelt or changed
    # one home, surname sound and first initial: a mention living there, and a traveller on a trip
    # booked from the contact of someone living there (a family member's booking,
    # `features.blocking.keys`)
    HOME = 2048

    @classmethod
    def names_of(cls, flags: int) -> list[str]:
        return [b.name.lower() for b in cls if b.name and flags & b]
