"""Columnar mention arrays, built once per frame, and the pairs that index into them.

Everything a comparison needs per mention is precomputed here in O(mentions): list fields become
padded integer-code matrices, so "do the two share an email" is a (pairs, K, K) numpy equality
instead of a Python set intersection per pair; strings stay object arrays for rapidfuzz cpdist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from rapidfuzz import process

from features.normalize.names import phonetic_of
from features.normalize.phones import phone_suffix

MAX_VALUES = 4  # values kept per list field and mention; more are rare and add little
# Fewer distinct string pairs than this are scored on the calling thread: rapidfuzz's worker
# threads cost about 75 us to start per call, more than scoring five thousand pairs on one core
# (and an online request, with its handful of pairs, makes several such calls).
SCORE_THREADS_FROM = 10_000


_TEXT_COLUMNS = (
    "first_name",
    "last_name",
    "middle_name",
    "street",
    "city",
    "postal_code",
    "country",
    "gender",
    "source",
)
_ARRAY_COLUMNS = (
    *_TEXT_COLUMNS,
    "emails",
    "phones",
    "phone_digits",
    "loyalty",
    "documents",
    "first_name_canonical",
    "date_of_birth",
)


def _codes(values: list[Any], vocabulary: dict[str, int]) -> np.ndarray:
    """(n, MAX_VALUES) int32 matrix of value codes, -1 where empty."""
    out = np.full((len(values), MAX_VALUES), -1, dtype=np.int32)
    for row, items in enumerate(values):
        for col, item in enumerate(items[:MAX_VALUES]):
            out[row, col] = vocabulary.setdefault(item, len(vocabulary))
    return out


def _dob_digits(values: list[Any]) -> np.ndarray:
    """(n, 8) digits of each ISO date of birth, -1 rows where there is none."""
    text = np.array(
        [v.replace("-", "") if isinstance(v, str) and len(v) == 10 else "" for v in values], dtype="U8"
    )
    padded = np.where(text == "", "00000000", text).astype("U8")
    digits = padded.view(np.uint32).reshape(-1, 8).astype(np.int16) - ord("0")
    digits[text == ""] = -1
    return digits


def _metaphones(names: list[Any]) -> list[str]:
    """`features.normalize.names.phonetic_of` each name, over a list (once per distinct name)."""
    codes = {n: phonetic_of(n) for n in {n for n in names if isinstance(n, str) and n}}
    return [codes.get(n, "") if isinstance(n, str) else "" for n in names]


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of hashable values, uniques in order of first appearance (as
    `pd.factorize`, whose own overhead is most of the cost on the few rows of an online call)."""
    if len(values) > 1000:
        codes, uniques = pd.factorize(values)
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)
    seen: dict[Any, int] = {}
    codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, len(values))
    return codes, np.array(list(seen), dtype=object)


def booking_contacts_by_mention(interactions: pd.DataFrame | None) -> dict[int, tuple[str, ...]]:
    """mention id -> the distinct contacts (normalized emails, phone suffixes) of the bookings it
    is on; mentions on none are left out."""
    held: dict[int, tuple[str, ...]] = {}
    if interactions is None or not len(interactions) or "contacts" not in interactions:
        return held
    for pk, contacts in zip(
        interactions["mention_pk"].tolist(), interactions["contacts"].tolist(), strict=True
    ):
        if contacts:
            held[pk] = tuple(dict.fromkeys((*held.get(pk, ()), *contacts)))
    return held


def _booking_contacts(pks: np.ndarray, interactions: pd.DataFrame | None) -> list[tuple[str, ...]]:
    """Per mention (in `pks` order), the distinct contacts of the bookings it is on."""
    held = booking_contacts_by_mention(interactions)
    if not held:
        return [()] * len(pks)
    return [held.get(pk, ()) for pk in pks.tolist()]


def _phone_suffixes(phones: list[Any], digits: list[Any]) -> list[tuple[str, ...]]:
    """Per mention, the distinct phone suffixes of its numbers (the blocking key's width)."""
    return [
        tuple(dict.fromkeys(s for s in map(phone_suffix, (*x, *y)) if s is not None))
        for x, y in zip(phones, digits, strict=True)
    ]


# Where a booking's contact lives: the addresses of the mentions that hold the contact as their own
# (contact -> (how many mentions hold it, their address keys)). A contact on more mentions than
# MOST_CONTACT_HOLDERS, or at more than MOST_CONTACT_HOMES address, is a desk's, several
# households' or namesakes' (two James Smiths writing one address) and locates nobody. In a batch
# the whole domain's frame answers (`homes_of_contacts`); online, the store
# (`pipelines.homes.contact_homes_in_store`).
ContactHomes = dict[str, tuple[int, frozenset[str]]]
MOST_CONTACT_HOLDERS = 200
MOST_CONTACT_HOMES = 1


def address_key(street: Any, postal_code: Any) -> str | None:
    """One home as a comparable key (normalized postal code and street), None without both."""
    if isinstance(street, str) and street and isinstance(postal_code, str) and postal_code:
        return f"{postal_code}|{street}"
    return None


def own_homes(frame: pd.DataFrame) -> list[str | None]:
    """Per mention of `frame`, the home it lives at (`address_key`), None without one."""
    places = zip(frame["street"].tolist(), frame["postal_code"].tolist(), strict=True)
    return [address_key(street, postal) for street, postal in places]


def bookings_compared(
    frame: pd.DataFrame, interactions: pd.DataFrame, a: np.ndarray, b: np.ndarray
) -> pd.DataFrame:
    """The rows of `interactions` whose bookers' homes some pair (a[i], b[i]) of `frame`'s
    mentions compares. A side's booker homes are compared only with the other side's own home
    or booker homes (`booked_from_home`, `same_booker_home`: NaN otherwise), so the homes of the
    bookings of a mention whose every partner has neither an address nor a booking change no
    feature: an online `match` of a person with no address reads none of its candidates'."""
    if not len(interactions) or "contacts" not in interactions:
        return interactions
    pks = frame["mention_pk"].to_numpy(np.int64)
    homes = [home is not None for home in own_homes(frame)]
    booked = list(booking_contacts_by_mention(interactions))
    comparing = np.union1d(pks[np.asarray(homes, bool)], np.asarray(booked, np.int64))
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    needed = np.union1d(b[np.isin(a, comparing)], a[np.isin(b, comparing)])
    return interactions[interactions["mention_pk"].isin(needed)]


def _own_contacts(emails: list[Any], suffixes: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Per mention, its own contacts: its emails and its phones' suffixes (`_phone_suffixes`)."""
    return [tuple(dict.fromkeys((*e, *p))) for e, p in zip(emails, suffixes, strict=True)]


def homes_of_contacts(frame: pd.DataFrame, contacts: set[str] | None = None) -> ContactHomes:
    """Each contact (of `contacts`, or every one) held by mentions of `frame`: how many hold it
    and their addresses."""
    holders: dict[str, int] = {}
    homes: dict[str, set[str]] = {}
    emails = frame["emails"].tolist()
    owned = _own_contacts(emails, _phone_suffixes(frame["phones"].tolist(), frame["phone_digits"].tolist()))
    places = zip(frame["street"].tolist(), frame["postal_code"].tolist(), strict=True)
    for held, (street, postal) in zip(owned, places, strict=True):
        home = address_key(street, postal)
        for contact in held:
            if contacts is not None and contact not in contacts:
                continue
            holders[contact] = holders.get(contact, 0) + 1
            if home is not None:
                homes.setdefault(contact, set()).add(home)
    return {c: (n, frozenset(homes.get(c, ()))) for c, n in holders.items()}


def located(entry: tuple[int, frozenset[str]] | None) -> frozenset[str]:
    """The homes a contact locates its bookings at (none where it locates nobody)."""
    held, where = entry or (0, frozenset())
    return where if held <= MOST_CONTACT_HOLDERS and len(where) <= MOST_CONTACT_HOMES else frozenset()


def booker_homes(booked: list[tuple[str, ...]], homes: ContactHomes) -> list[tuple[str, ...]]:
    """Per mention, the homes of whoever booked the trips it is on (see `ContactHomes`)."""
    out = []
    for contacts in booked:
        found: dict[str, None] = {}
        for contact in contacts:
            found.update(dict.fromkeys(sorted(located(homes.get(contact)))))
        out.append(tuple(found))
    return out


def own_contacts_of(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    """Per mention of `frame`, the contacts it holds as its own, as bookings carry them (emails,
    phone suffixes)."""
    suffixes = _phone_suffixes(frame["phones"].tolist(), frame["phone_digits"].tolist())
    return _own_contacts(frame["emails"].tolist(), suffixes)


def contacts_rehomed(holders: pd.DataFrame, contacts: set[str], arriving: set[int]) -> dict[str, bool]:
    """Of `contacts`, those whose bookings the `arriving` mentions located elsewhere: the home the
    contact's holders (`holders`: a frame holding at least all of them) locate its bookings at
    is another with them than without them; True where it located them nowhere before (a first
    address written for it), False where they lost or changed their home (a second address)."""
    now = homes_of_contacts(holders, contacts)
    before = homes_of_contacts(holders[~holders["mention_pk"].isin(arriving)], contacts)
    out = {}
    for c in contacts:
        was, is_ = located(before.get(c)), located(now.get(c))
        if was != is_:
            out[c] = not was
    return out


@dataclass
class MentionArrays:
    """Per-mention arrays of a frame, row-aligned with `pk` (sorted mention ids)."""

    pk: np.ndarray
    text: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    ints: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    string_codes: dict[str, np.ndarray] = field(default_factory=dict)
    vocabularies: dict[str, np.ndarray] = field(default_factory=dict)
    dob: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.int16))

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        interactions: pd.DataFrame | None = None,
        contact_homes: ContactHomes | None = None,
    ) -> MentionArrays:
        """The arrays of `frame`; `contact_homes`, where the contacts its bookings were made from
        live (`homes_of_contacts`), is worked out from `frame` itself when not given, which is
        right only when `frame` is the whole domain (a batch)."""
        # Columns are read once each as lists and transformed by comprehensions: pandas' string
        # methods loop in Python on object columns anyway, and cost tens of microseconds per call,
        # most of the time of a one-record online request.
        pks = frame["mention_pk"].to_numpy(np.int64)
        if len(pks) > 1 and not bool((pks[1:] > pks[:-1]).all()):
            frame = frame.sort_values("mention_pk")
            pks = frame["mention_pk"].to_numpy(np.int64)
        arrays = cls(pks)
        column = {c: frame[c].tolist() for c in _ARRAY_COLUMNS}
        for name in _TEXT_COLUMNS:
            arrays.text[name] = np.array(
                [v if isinstance(v, str) else "" for v in column[name]], dtype=object
            )
        arrays.text["full_name"] = np.array(
            [
                " ".join(f"{f} {m} {last}".split())
                for f, m, last in zip(
                    column["first_name"], column["middle_name"], column["last_name"], strict=True
                )
            ],
            dtype=object,
        )
        emails = column["emails"]
        arrays.text["email_local"] = np.array(
            [t[0].rpartition("@")[0] if t else "" for t in emails], dtype=object
        )
        arrays.text["email_domain"] = np.array(
            [t[0].rpartition("@")[2] if t else "" for t in emails], dtype=object
        )
        arrays.text["document"] = np.array([t[0] if t else "" for t in column["documents"]], dtype=object)
        vocabulary: dict[str, int] = {}
        lists = {
            "emails": emails,
            "phones": column["phones"],
            "loyalty": column["loyalty"],
            "documents": column["documents"],
            "first_canonical": column["first_name_canonical"],
            "phone_suffixes": _phone_suffixes(column["phones"], column["phone_digits"]),
            "document_kinds": [
                tuple(dict.fromkeys(d.split(":", 1)[0] for d in t)) for t in column["documents"]
            ],
            "loyalty_programs": [
                tuple(dict.fromkeys(x.split(":", 1)[0] for x in t)) for t in column["loyalty"]
            ],
        }
        # A mention's own contacts, and the contacts of the bookings it travels on (a PNR's
        # contact email and phone, which belong to whoever booked it): one vocabulary, so that
        # "this passenger's booking was made from that guest's email" is a code comparison.
        lists["own_contacts"] = _own_contacts(emails, lists["phone_suffixes"])
        lists["booking_contacts"] = _booking_contacts(pks, interactions)
        # Who booked, where they live: a guest on a trip booked from the contact of someone living
        # at the other mention's address (a family member's booking) is compared by home.
        lists["own_home"] = [
            (home,) if home else ()
            for home in (
                address_key(st, pc) for st, pc in zip(column["street"], column["postal_code"], strict=True)
            )
        ]
        if any(lists["booking_contacts"]):
            if contact_homes is None:
                contact_homes = homes_of_contacts(frame)
            lists["booker_homes"] = booker_homes(lists["booking_contacts"], contact_homes)
        else:
            lists["booker_homes"] = [()] * len(pks)
        for name, values in lists.items():
            codes = _codes(values, vocabulary)
            used = int((codes >= 0).any(axis=0).sum())
            arrays.codes[name] = np.ascontiguousarray(codes[:, : max(used, 1)])
        for name, values in arrays.text.items():
            arrays.present[name] = values != ""
            arrays.string_codes[name], arrays.vocabularies[name] = _factorize(values)
        initials = np.array([v[:1] if isinstance(v, str) else "" for v in column["first_name"]], dtype=object)
        arrays.ints["first_initial"] = _factorize(initials)[0].astype(np.int32)
        sound = np.array(_metaphones(column["last_name"]), dtype=object)
        arrays.ints["last_phonetic"] = _factorize(sound)[0].astype(np.int32)
        arrays.ints["last_phonetic"][sound == ""] = -1
        arrays.ints["object_pk"] = frame["object_pk"].to_numpy(np.int64)
        arrays.dob = _dob_digits(column["date_of_birth"])
        ref = np.full(len(frame), -1, np.int64)
        role = np.full(len(frame), -1, np.int64)
        if interactions is not None and len(interactions):
            inter = interactions.drop_duplicates("mention_pk")
            pos = np.searchsorted(arrays.pk, inter["mention_pk"].to_numpy(np.int64))
            pos[pos >= len(arrays.pk)] = 0
            ok = arrays.pk[pos] == inter["mention_pk"].to_numpy(np.int64)
            ref[pos[ok]] = pd.factorize(inter["ref"])[0][ok]
            role[pos[ok]] = pd.Categorical(inter["role"], categories=ROLES).codes[ok]
        arrays.ints["ref"], arrays.ints["role"] = ref, role
        return arrays

    def positions(self, ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.pk, ids)
        if len(ids) and (pos.max() >= len(self.pk) or not np.array_equal(self.pk[pos], ids)):
            raise KeyError("some pair ids are not mentions of this frame")
        return pos


ROLES = ["holder", "guest", "passenger", "user", "customer"]


@dataclass(frozen=True)
class PairData:
    """Pair i compares mention rows `ia[i]` and `ib[i]` of `arrays`."""

    arrays: MentionArrays
    ia: np.ndarray
    ib: np.ndarray
    cosine: np.ndarray
    _shared: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _distinct: dict[str, DistinctPairs] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ia)

    def both_text(self, column: str) -> np.ndarray:
        present = self.arrays.present[column]
        return present[self.ia] & present[self.ib]

    def equal_text(self, column: str) -> np.ndarray:
        """Whether both sides hold the same string (compared as codes, not as strings)."""
        codes = self.arrays.string_codes[column]
        return codes[self.ia] == codes[self.ib]

    def distinct(self, column: str) -> DistinctPairs:
        """The pairs whose strings differ, as distinct string pairs (computed once per column)."""
        if column not in self._distinct:
            codes, vocabulary = self.arrays.string_codes[column], self.arrays.vocabularies[column]
            ca, cb = codes[self.ia], codes[self.ib]
            differ = self.both_text(column) & (ca != cb)
            self._distinct[column] = DistinctPairs.of(differ, ca, vocabulary, cb, vocabulary)
        return self._distinct[column]

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        values = self.arrays.codes[column]
        return values[self.ia], values[self.ib]

    def shared(self, column: str) -> np.ndarray:
        """How many values the pair has in common in a list field (computed once per column)."""
        if column not in self._shared:
            self._shared[column] = _common(*self.codes(column))
        return self._shared[column]

    def crossed(self, left: str, right: str) -> np.ndarray:
        """Whether either mention's list field `left` holds a value of the other's field `right`."""
        lefts, rights = self.arrays.codes[left], self.arrays.codes[right]
        return (_common(lefts[self.ia], rights[self.ib]) > 0) | (_common(lefts[self.ib], rights[self.ia]) > 0)

    def has(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Whether the first and the second mention of each pair hold a value of a list field."""
        a, b = self.codes(column)
        return a[:, 0] >= 0, b[:, 0] >= 0

    def both_have(self, column: str) -> np.ndarray:
        a, b = self.has(column)
        return a & b


def _common(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, how many codes of `a` (-1: none) occur in `b`."""
    count = np.zeros(len(a), np.float32)
    for i in range(a.shape[1]):
        valid = a[:, i] >= 0
        for j in range(b.shape[1]):
            count += valid & (a[:, i] == b[:, j])
    return count


@dataclass(frozen=True)
class DistinctPairs:
    """The pairs selected by `mask`, each distinct (left, right) string pair kept once."""

    mask: np.ndarray
    left: np.ndarray
    right: np.ndarray
    inverse: np.ndarray

    @classmethod
    def of(
        cls,
        mask: np.ndarray,
        left_codes: np.ndarray,
        left_vocabulary: np.ndarray,
        right_codes: np.ndarray,
        right_vocabulary: np.ndarray,
    ) -> DistinctPairs:
        size = len(right_vocabulary)
        unique, inverse = np.unique(left_codes[mask] * size + right_codes[mask], return_inverse=True)
        return cls(mask, left_vocabulary[unique // size], right_vocabulary[unique % size], inverse)

    def score(self, scorer: Any) -> np.ndarray:
        """`scorer` in [0, 1] for each selected pair (rapidfuzz cpdist over the distinct ones)."""
        if len(self.left) == 0:
            return np.zeros(len(self.inverse), np.float32)
        scores = np.asarray(
            process.cpdist(
                self.left,
                self.right,
                scorer=scorer,
                dtype=np.float32,
                workers=1 if len(self.left) < SCORE_THREADS_FROM else -1,
            ),
            dtype=np.float32,
        )
        if scorer_is_percent(scorer):
            scores /= 100.0
        return scores[self.inverse]


Features = dict[str, np.ndarray]  # feature name -> one value per pair


class Comparison(Protocol):
    name: str
    # rapidfuzz scorings per pair, the bulk of a comparison's cost: when comparisons run side by
    # side the heaviest start first, so that a light one finishes last
    string_scorings: int

    def to_features(self, pairs: PairData) -> Features: ...


def similarity(scorer: Any, pairs: PairData, column: str) -> np.ndarray:
    """Element-wise string similarity in [0, 1] (rapidfuzz cpdist); NaN where a side is empty.

    Each distinct pair of strings is scored once and identical strings are 1.0 without scoring:
    blocked pairs repeat the same names and places a lot.
    """
    out = np.where(pairs.both_text(column), np.float32(1.0), np.float32(np.nan)).astype(np.float32)
    distinct = pairs.distinct(column)
    out[distinct.mask] = distinct.score(scorer)
    return out


def scorer_is_percent(scorer: object) -> bool:
    """rapidfuzz's fuzz.* scorers return 0-100; the normalized distance scorers 0-1."""
    return getattr(scorer, "__module__", "").startswith("rapidfuzz.fuzz")


def where_both(both: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(both, values, np.nan).astype(np.float32)
