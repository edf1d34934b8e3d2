"""Deterministic blocking keys and the pairs they make, vectorized over a mention frame.

Each key kind yields a long table (mention_pk, key); mentions sharing a key become pairs. A key
shared by more than `max_block` mentions (a corporate switchboard, a travel agency's email) is
not used: it would make thousands of pairs that are almost all false; such keys are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.blocking.blockers import Blocker
from features.normalize.names import phonetic
from features.normalize.phones import phone_suffix


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
