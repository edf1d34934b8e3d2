"""Deterministic blocking keys and the pairs they make, vectorized over a mention frame.

Each key kind yields a long table (mention_pk, key); mentions sharing a key become pairs. A key
shared by more than `max_block` mentions (a corporate switchboard, a travel agency's email) is
not used: it would make thousands of pairs that are almost all false; such keys are counted.

`mention_keys` is every key of some mentions as one table, the rows the store keeps per mention
(`blocking_keys`) so that one mention's candidates are index probes: the identifier and name
keys, the travel keys (booking references and booking contacts) and the string pass's blocks
with the name it compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.blocking.blockers import Blocker
from features.blocking.strings import block_columns, pass_names
from features.normalize.names import phonetic
from features.normalize.phones import phone_suffix

# The string pass's blocks, kept beside the key kinds (above every Blocker bit).
STRING_YEAR, STRING_PHONETIC, STRING_POSTAL = 1 << 16, 1 << 17, 1 << 18
STRING_BLOCKS = (STRING_YEAR, STRING_PHONETIC, STRING_POSTAL)
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


def mention_keys(frame: pd.DataFrame, interactions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every stored key of these mentions as (mention_pk, kind, key, name): the deterministic
    blockers' keys (`name` empty), the travel keys, and the string pass's blocks with the name it
    compares. Contact holders are not stored: they follow from the email, phone and travel rows."""
    parts = []
    for blocker, table in key_tables(frame).items():
        parts.append(table.assign(kind=int(blocker), name=""))
    parts.append(travel_keys(interactions, frame["mention_pk"]).assign(kind=int(Blocker.TRAVEL), name=""))
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
    out["key"] = out["key"].astype(str)
    return out.drop_duplicates(["mention_pk", "kind", "key"], ignore_index=True)
