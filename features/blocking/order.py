"""The order blocking breaks ties in: a number per mention from its mention key alone.

Where two candidates are equally near (the same name, the same record text), blocking keeps the
one first in this order. The store's ids follow arrival, so ties broken by id would give another
candidate set for the same data read in another row order; a key's hash is the same whatever
came before it, in a batch run and for one record online.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

LAST = np.iinfo(np.int64).max  # the order of a mention that has no key yet (sorts after all)


def key_hash(mention_key: str) -> int:
    """A 64-bit number from the mention key (BLAKE2b, stable across machines and versions: stored
    values and fresh ones must agree); the labelling draws use it whole."""
    return int.from_bytes(hashlib.blake2b(mention_key.encode("utf-8"), digest_size=8).digest(), "little")


def order_key(mention_key: str) -> int:
    """`key_hash` as a non-negative 63-bit number (it is stored as a signed BIGINT)."""
    return key_hash(mention_key) >> 1


def order_keys(mention_keys: Iterable[str]) -> np.ndarray:
    """`order_key` of each mention key, as int64."""
    return np.fromiter((order_key(str(k)) for k in mention_keys), np.int64)
