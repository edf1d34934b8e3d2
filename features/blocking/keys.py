"""Deterministic blocking keys and the pairs they make, vectorized over a mention frame.

Each key kind yields a long table (mention_pk, key); mentions sharing a key become pairs. A key
shared by more than `max_block` mentions (a corporate switchboard, a travel agency's email) is
not used: it would make thousands of pairs that are almost all false; such keys are counted.

`mention_keys` is every key of some mentions as one table, the rows the store keeps per mention
(`blocking_keys`) so that one mention's candidates are index probes: the identifier and name
keys, the travel keys (booking references and booking contacts), the home a mention lives at,
and the string pass's blocks with the name it compares.

A home key (`Blocker.HOME`, `home_keys`) is a home, a surname sound and a first initial: a mention
living at that address has it, and so has a traveller on a trip booked from the contact of someone
living there (a guest with nothing but a name on the booking a parent made). Where a contact lives is a fact
about the whole domain (`features.comparisons.base.ContactHomes`), so the store keeps only where
each mention lives; an online lookup follows the home's residents to their contacts and the
bookings made from them (`pipelines.candidates.home_blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.blocking.blockers import Blocker
from features.blocking.strings import block_columns, pass_names
from features.comparisons.base import (
    ContactHomes,
    address_key,
    booker_homes,
    booking_contacts_by_mention,
    homes_of_contacts,
    own_homes,
)
from features.normalize.names import phonetic
from features.normalize.phones import phone_suffix

# The string pass's blocks, kept beside the key kinds (above every Blocker bit).
STRING_YEAR, STRING_PHONETIC, STRING_POSTAL = 1 << 16, 1 << 17, 1 << 18
STRING_BLOCKS = (STRING_YEAR, STRING_PHONETIC, STRING_POSTAL)
# An address written for more mentions than this is a hotel's, an office's or a placeholder's, not
# a family's home: it gives no home key (the same cap as a contact's holders).
MOST_HOME_RESIDENTS = 200
# Keys people share by chance (names, birth dates) get the tighter block limit.
NAME_KEYS = (Blocker.NAME, Blocker.NAME_DOB, Blocker.PHONETIC_YEAR, Blocker.DOB_POSTAL)


@dataclass
class BlockStats:
    pairs: dict[str, int] = field(default_factory=dict)
    giant_keys: dict[str, int] = field(default_factory=dict)


def _explode(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    long = frame[["mention_pk", column]].explode(column).dropna()
    long = long[long[column] != ""]
    return long.rename(columns={column: "key"})


def _phone_suffixes(frame: pd.DataFrame) -> pd.DataFrame:
    parts = [_explode(frame, "phones"), _explode(frame, "phone_digits")]
    long = pd.concat(parts, ignore_index=True)
    long["key"] = long["key"].astype(str).map(phone_suffix)
    return long.dropna(subset=["key"])


def key_tables(frame: pd.DataFrame) -> dict[Blocker, pd.DataFrame]:
    """(mention_pk, key) tables for every deterministic blocker."""
    out: dict[Blocker, pd.DataFrame] = {
        Blocker.EMAIL: _explode(frame, "emails"),
        Blocker.PHONE: _phone_suffixes(frame),
        Blocker.LOYALTY: _explode(frame, "loyalty"),
        Blocker.DOCUMENT: _explode(frame, "documents"),
    }
    first, last, dob = frame["first_name"], frame["last_name"], frame["date_of_birth"]
    has = (first != "") & (last != "") & (dob != "")
    out[Blocker.NAME_DOB] = pd.DataFrame(
        {"mention_pk": frame["mention_pk"][has], "key": (first + "|" + last + "|" + dob)[has]}
    )
    postal = frame["postal_code"]
    has = (dob != "") & (postal != "")
    out[Blocker.DOB_POSTAL] = pd.DataFrame(
        {"mention_pk": frame["mention_pk"][has], "key": (dob + "|" + postal)[has]}
    )
    year = dob.str[:4]
    sound = phonetic(last)
    has = (sound != "") & (year != "")
    out[Blocker.PHONETIC_YEAR] = pd.DataFrame(
        {"mention_pk": frame["mention_pk"][has], "key": (sound + "|" + year)[has]}
    )
    has = (first != "") & (last != "")
    swap = first > last
    low, high = first.where(~swap, last), last.where(~swap, first)
    name_key = low + "|" + high
    out[Blocker.NAME] = pd.DataFrame({"mention_pk": frame["mention_pk"][has], "key": name_key[has]})
    return out


def travel_homes(
    frame: pd.DataFrame, interactions: pd.DataFrame | None, contact_homes: ContactHomes | None = None
) -> list[tuple[str, ...]]:
    """Per mention of `frame` (in its order), the homes of whoever booked the trips it is on;
    `contact_homes` (`homes_of_contacts`) is worked out from `frame` when not given, which is right
    only when `frame` is the whole domain."""
    booked = booking_contacts_by_mention(interactions)
    contacts = [booked.get(pk, ()) for pk in frame["mention_pk"].tolist()] if booked else []
    if not any(contacts):
        return [()] * len(frame)
    if contact_homes is None:
        contact_homes = homes_of_contacts(frame)
    return booker_homes(contacts, contact_homes)


def first_initials(first: Any, canonical: Any) -> tuple[str, ...]:
    """The initials a first name goes by: its own and its canonical forms' (`Bob` and `Robert`
    meet at r)."""
    names = (first, *(canonical if canonical is not None else ()))
    return tuple(dict.fromkeys(n[0] for n in names if isinstance(n, str) and n))


def home_key(home: str, sound: str, initial: str) -> str:
    """The key of one home, one surname sound and one first initial."""
    return f"{home}|{sound}|{initial}"


def home_keys(frame: pd.DataFrame, interactions: pd.DataFrame | None) -> pd.DataFrame:
    """(mention_pk, key) of the home keys of a whole domain's frame: each mention's own home and
    the homes its trips were booked from (`travel_homes`), each with its surname's sound and each
    initial its first name goes by (`first_initials`; none without both names: the members of a
    family are told apart by their first names, and the block of a whole family's trips was
    twice as many pairs for the same true ones); a home with more than `MOST_HOME_RESIDENTS`
    residents is no home."""
    own = own_homes(frame)
    residents = pd.Series([h for h in own if h is not None], dtype=object).value_counts()
    crowded = set(residents.index[residents > MOST_HOME_RESIDENTS].tolist())
    sounds = phonetic(frame["last_name"]).tolist()
    initials = [
        first_initials(f, c)
        for f, c in zip(frame["first_name"].tolist(), frame["first_name_canonical"].tolist(), strict=True)
    ]
    rows = []
    for pk, home, booked_from, sound, firsts in zip(
        frame["mention_pk"].tolist(), own, travel_homes(frame, interactions), sounds, initials, strict=True
    ):
        if not sound:
            continue
        for where in dict.fromkeys(((home,) if home else ()) + booked_from):
            if where not in crowded:
                rows += [(pk, home_key(where, sound, initial)) for initial in firsts]
    return pd.DataFrame(rows, columns=["mention_pk", "key"]).astype({"mention_pk": np.int64, "key": object})


def pairs_from_keys(keys: pd.DataFrame, max_block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """All pairs (a < b) of mentions sharing a key, skipping keys held by more than `max_block`.

    Returns (a, b, number of giant keys skipped).
    """
    keys = keys.drop_duplicates()
    sizes = keys.groupby("key")["mention_pk"].transform("size")
    giant = int(keys.loc[sizes > max_block, "key"].nunique())
    keys = keys[(sizes > 1) & (sizes <= max_block)]
    if keys.empty:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), giant
    merged = keys.merge(keys, on="key", suffixes=("_a", "_b"))
    merged = merged[merged["mention_pk_a"] < merged["mention_pk_b"]]
    return merged["mention_pk_a"].to_numpy(np.int64), merged["mention_pk_b"].to_numpy(np.int64), giant


def block_limit(kind: int, max_block: int, max_name_block: int) -> int:
    """The most mentions a key of this kind may hold before it is skipped as generic."""
    return max_name_block if kind in NAME_KEYS else max_block


def travel_keys(interactions: pd.DataFrame, pks: pd.Series | np.ndarray) -> pd.DataFrame:
    """(mention_pk, key) of the shared travel of these mentions: each booking, PNR, session or call
    reference, and each booking contact (a passenger's PNR carries the contact's email or phone,
    which belongs to one of its passengers)."""
    if interactions is None or not len(interactions):
        return pd.DataFrame({"mention_pk": np.zeros(0, np.int64), "key": np.zeros(0, object)})
    shared = interactions[interactions["mention_pk"].isin(pks)]
    same_booking = shared[["mention_pk", "ref"]].rename(columns={"ref": "key"})
    contacts = shared[["mention_pk", "contacts"]].explode("contacts").dropna()
    contacts = contacts.rename(columns={"contacts": "key"})
    return pd.concat([same_booking, contacts], ignore_index=True).drop_duplicates()


def with_contact_holders(travel: pd.DataFrame, emails: pd.DataFrame, phones: pd.DataFrame) -> pd.DataFrame:
    """The travel key table with the mentions that hold a booking contact's email or phone added
    to that contact's key: pairing them with the booking's passengers lets comparison tell which
    passenger the contact is."""
    holders = pd.concat([emails, phones])
    return pd.concat([travel, holders[holders["key"].isin(travel["key"])]], ignore_index=True)


# Below this many mentions the keys are derived row by row: pandas costs tens of microseconds per
# operation, a whole vectorized derivation about 60 ms, which one online record cannot afford.
ROW_BY_ROW_BELOW = 64


def surname_sound(last: str) -> str:
    """The sound of a surname's last word, as the phonetic keys use it (`phonetic` row by row)."""
    import jellyfish

    return jellyfish.metaphone(last.split()[-1]) if last else ""


def row_keys(
    row: dict[str, Any], travel: Sequence[tuple[str, tuple[str, ...]]] = ()
) -> list[tuple[int, str, str]]:
    """The keys of one mention, (kind, key, name), exactly as `mention_keys` derives them for a
    frame (a property test holds the two together); `travel` is its (reference, contacts) rows."""
    out: list[tuple[int, str, str]] = []
    for kind, column in (
        (Blocker.EMAIL, "emails"),
        (Blocker.LOYALTY, "loyalty"),
        (Blocker.DOCUMENT, "documents"),
    ):
        out += [(int(kind), v, "") for v in row[column] if v]
    for number in (*row["phones"], *row["phone_digits"]):
        suffix = phone_suffix(str(number)) if number else None
        if suffix is not None:
            out.append((int(Blocker.PHONE), suffix, ""))
    first, last, dob, postal = row["first_name"], row["last_name"], row["date_of_birth"], row["postal_code"]
    if first and last and dob:
        out.append((int(Blocker.NAME_DOB), f"{first}|{last}|{dob}", ""))
    if dob and postal:
        out.append((int(Blocker.DOB_POSTAL), f"{dob}|{postal}", ""))
    sound, year = surname_sound(last), dob[:4]
    if sound and year:
        out.append((int(Blocker.PHONETIC_YEAR), f"{sound}|{year}", ""))
    if first and last:
        low, high = (last, first) if first > last else (first, last)
        out.append((int(Blocker.NAME), f"{low}|{high}", ""))
    for ref, contacts in travel:
        out.append((int(Blocker.TRAVEL), str(ref), ""))
        out += [(int(Blocker.TRAVEL), str(c), "") for c in contacts if c is not None]
    home = address_key(row["street"], postal)
    if home is not None:
        out.append((int(Blocker.HOME), home, ""))
    name = f"{first} {last}".strip()
    if name:
        for string_kind, block in zip(STRING_BLOCKS, (year, sound, postal), strict=True):
            if block:
                out.append((string_kind, block, name))
    return list(dict.fromkeys(out))


def _row_by_row(frame: pd.DataFrame, interactions: pd.DataFrame | None) -> pd.DataFrame:
    travel: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
    if interactions is not None and len(interactions):
        for pk, ref, contacts in zip(
            interactions["mention_pk"].tolist(),
            interactions["ref"].tolist(),
            interactions["contacts"].tolist(),
            strict=True,
        ):
            travel.setdefault(int(pk), []).append((ref, tuple(contacts)))
    rows = []
    columns = (
        "mention_pk",
        "first_name",
        "last_name",
        "date_of_birth",
        "postal_code",
        "street",
        "emails",
        "phones",
        "phone_digits",
        "loyalty",
        "documents",
    )
    for values in zip(*(frame[c].tolist() for c in columns), strict=True):
        row = dict(zip(columns, values, strict=True))
        pk = int(row["mention_pk"])
        # a key kept once per mention and kind, whichever rows it came from (as drop_duplicates)
        seen: set[tuple[int, str]] = set()
        for kind, key, name in row_keys(row, travel.get(pk, ())):
            if (kind, key) not in seen:
                seen.add((kind, key))
                rows.append((pk, kind, key, name))
    out = pd.DataFrame(rows, columns=["mention_pk", "kind", "key", "name"])
    out["mention_pk"] = out["mention_pk"].astype(np.int64)
    out["kind"] = out["kind"].astype(np.int64)
    out["key"] = out["key"].astype(object)
    out["name"] = out["name"].astype(object)
    return out


def mention_keys(frame: pd.DataFrame, interactions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every stored key of these mentions as (mention_pk, kind, key, name): the deterministic
    blockers' keys (`name` empty), the travel keys, the home each lives at (`Blocker.HOME`, the
    address alone: the home keys themselves rest on the whole domain, `home_keys`), and the
    string pass's blocks with the name it compares. Contact holders are not stored: they follow
    from the email, phone and travel rows. Rows come sorted by (mention_pk, kind, key)."""
    if len(frame) < ROW_BY_ROW_BELOW:
        return _sorted_keys(_row_by_row(frame, interactions))
    return _sorted_keys(_vectorized(frame, interactions))


def _vectorized(frame: pd.DataFrame, interactions: pd.DataFrame | None) -> pd.DataFrame:
    parts = []
    for blocker, table in key_tables(frame).items():
        parts.append(table.assign(kind=int(blocker), name=""))
    parts.append(travel_keys(interactions, frame["mention_pk"]).assign(kind=int(Blocker.TRAVEL), name=""))
    homes = pd.Series(own_homes(frame), index=frame.index, dtype=object)
    lived = homes.notna()
    parts.append(
        pd.DataFrame(
            {
                "mention_pk": frame["mention_pk"][lived],
                "key": homes[lived],
                "kind": int(Blocker.HOME),
                "name": "",
            }
        )
    )
    names = pass_names(frame)
    for kind, block in zip(STRING_BLOCKS, block_columns(frame), strict=True):
        usable = (names != "") & (block != "")
        parts.append(
            pd.DataFrame(
                {
                    "mention_pk": frame["mention_pk"][usable],
                    "key": block[usable],
                    "kind": kind,
                    "name": names[usable],
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)[["mention_pk", "kind", "key", "name"]]
    out["mention_pk"] = out["mention_pk"].astype(np.int64)
    out["kind"] = out["kind"].astype(np.int64)
    out["key"] = out["key"].astype(str).astype(object)
    out["name"] = out["name"].astype(object)
    return out.drop_duplicates(["mention_pk", "kind", "key"], ignore_index=True)


def _sorted_keys(keys: pd.DataFrame) -> pd.DataFrame:
    return keys.sort_values(["mention_pk", "kind", "key"], kind="stable", ignore_index=True)
