"""The comparison vectors of a domain's stored candidate pairs, kept between commands.

`upt label`, `upt train` and `upt resolve` each score the whole candidate pool; at 100,000 travel
mentions building the mentions' comparison arrays and comparing 1.26 million pairs takes 4-5 s
per command, reading them back a fraction of a second. The kept file is used only when it is
exactly what a fresh comparison would give:
- the same mentions (`frame_fingerprint`: ids and content hashes) and the same travel
  (`interactions_fingerprint`);
- the same candidate pairs, blocker bits and cosines, compared value for value with the pairs
  just read from the store (whatever wrote them: `upt block`, online ingestion, erasure);
- the same comparison code (a hash of the source of the modules that build the vectors) and
  the same file format.

Anything else and the vectors are computed afresh (and kept again). The file holds mention ids and
similarity scores, no personal value; it lives in the domain's cache folder, which erasure
removes whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from contextlib import suppress
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from features.comparisons import pair_frame

FORMAT_VERSION = 2  # 2: one array per feature column
_FEATURES = Path(__file__).resolve().parent


@cache
def code_fingerprint() -> str:
    """A hash of the source that turns stored mentions into comparison vectors: the frame builder,
    the normalizers it reads with and the comparisons. Any edit there means vectors kept by the
    earlier code are not read."""
    digest = hashlib.blake2b(f"{FORMAT_VERSION}|".encode(), digest_size=20)
    files = [_FEATURES / "frame.py", *sorted((_FEATURES / "comparisons").glob("*.py"))]
    files += sorted((_FEATURES / "normalize").glob("*.py"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def interactions_fingerprint(interactions: pd.DataFrame) -> bytes:
    """What a domain's interactions hold, as bytes to hash: every column comparisons and blocking
    read (empty when there are none)."""
    if not len(interactions):
        return b""
    shared = interactions[["mention_pk", "object_pk", "kind", "role", "ref"]].astype(str)
    shared = shared.assign(contacts=interactions["contacts"].map(repr))
    return bytes(pd.util.hash_pandas_object(shared, index=False).to_numpy().tobytes())


def pool_key(frame_fingerprint: str, interactions: pd.DataFrame) -> str:
    """The key a kept pool is read under: the mentions, their travel and the comparison code."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{code_fingerprint()}|{frame_fingerprint}|".encode())
    digest.update(interactions_fingerprint(interactions))
    return digest.hexdigest()


_PAIR_ARRAYS = ("a", "b", "blockers", "cosine")


def read_pool(
    path: Path, key: str, a: np.ndarray, b: np.ndarray, blockers: np.ndarray, cosine: np.ndarray
) -> pd.DataFrame | None:
    """The kept comparison vectors of exactly these pairs (in this order) under this key, as
    `features.comparisons.compare` returns them; None when there are none or they are not these."""
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as kept:
            meta = json.loads(str(kept["meta"]))
            if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
                return None
            given = dict(zip(_PAIR_ARRAYS, (a, b, blockers, cosine), strict=True))
            for name, values in given.items():
                stored = kept[name]
                if stored.shape != values.shape or not np.array_equal(stored, values, equal_nan=True):
                    return None
            # column by column into one column-major block, as `compare` lays it out: no second
            # copy of the whole matrix at any time (2.3 GB at 12 million pairs)
            matrix = np.empty((len(a), len(meta["columns"])), np.float32, order="F")
            for j in range(matrix.shape[1]):
                matrix[:, j] = kept[f"f{j}"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # none kept, or a damaged file: compared afresh
    return pair_frame(a, b, matrix, meta["columns"])


def keep_pool(path: Path, key: str, features: pd.DataFrame, blockers: np.ndarray, cosine: np.ndarray) -> None:
    """Keep the comparison vectors of a domain's candidate pairs at `path` (written aside and
    moved into place, so a reader sees the old file or the new one). A full or read-only disk
    leaves no file: keeping is an optimization."""
    columns = [c for c in features.columns if c not in ("mention_a", "mention_b")]
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    # one array per column: a column of the frame is a view, the whole matrix would be a copy
    vectors = {f"f{j}": features[c].to_numpy(np.float32) for j, c in enumerate(columns)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as f:
            np.savez(
                f,
                meta=np.array(json.dumps({"format": FORMAT_VERSION, "key": key, "columns": columns})),
                a=features["mention_a"].to_numpy(np.int64),
                b=features["mention_b"].to_numpy(np.int64),
                blockers=np.asarray(blockers),
                cosine=np.asarray(cosine),
                **vectors,
            )
        os.replace(partial, path)
    except OSError:
        with suppress(OSError):
            partial.unlink(missing_ok=True)


def kept_or_compared(
    path: Path,
    key: str,
    a: np.ndarray,
    b: np.ndarray,
    blockers: np.ndarray,
    cosine: np.ndarray,
    compare_all: Callable[[], pd.DataFrame],
) -> pd.DataFrame:
    """The comparison vectors of these pairs: the kept ones when they are exactly these (under
    this key), else `compare_all()`'s, kept for the next reader."""
    kept = read_pool(path, key, a, b, blockers, cosine)
    if kept is not None:
        return kept
    features = compare_all()
    keep_pool(path, key, features, blockers, cosine)
    return features
