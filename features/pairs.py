"""Comparison vectors for stored candidate pairs, or for any pairs of stored mentions.

The one place that turns what `upt block` stored into the feature DataFrame that labelling,
training and resolution score; online serving builds the same frame for one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from features.blocking.order import key_hash
from features.comparisons import MentionArrays, compare, pair_frame
from features.embedding.similarity import pair_cosines
from features.frame import frame_fingerprint, load_interactions, load_mentions
from features.pool_cache import kept_or_compared, pool_key
from profiles.store.db import plain_rows
from profiles.store.schema import candidate_pairs
from profiles.store.vectors import vectors_by_ids


@dataclass
class PairFeatures:
    frame: pd.DataFrame  # the mentions
    features: pd.DataFrame  # mention_a, mention_b (ids) + one column per feature
    blockers: np.ndarray

    def keys(self, rows: np.ndarray | list[int]) -> list[tuple[str, str]]:
        keys = self.frame["mention_key"]
        a = self.features["mention_a"].to_numpy()[rows]
        b = self.features["mention_b"].to_numpy()[rows]
        return list(zip(keys.loc[a].tolist(), keys.loc[b].tolist(), strict=True))

    def in_key_order(self) -> PairFeatures:
        """The same pairs ordered by their mention keys (the smaller key of each pair, then the
        other), not by the ids the store gave in order of arrival: what picks from these rows in
        order picks the same pairs however the data arrived."""
        # by each mention's rank among the keys: the keys themselves as fixed-width numpy strings
        # took 3 GB per column of pairs at 12 million candidate pairs and ran a 1M store's
        # labelling out of 24 GB
        keys = self.frame["mention_key"]
        rank = pd.Series(np.argsort(np.argsort(keys.to_numpy(object), kind="stable")), index=keys.index)
        ra = rank.loc[self.features["mention_a"].to_numpy()].to_numpy(np.int64)
        rb = rank.loc[self.features["mention_b"].to_numpy()].to_numpy(np.int64)
        order = np.lexsort((np.maximum(ra, rb), np.minimum(ra, rb)))
        return PairFeatures(
            self.frame, self.features.iloc[order].reset_index(drop=True), self.blockers[order]
        )

    def draws(self) -> np.ndarray:
        """One pseudo-random 64-bit number per pair, from its two mention keys alone (either
        order): the labelling loop's random picks, the same for a pair whatever rows surround it."""
        keys = self.frame["mention_key"]
        digest = {pk: key_hash(str(key)) for pk, key in keys.items()}
        ha = self.features["mention_a"].map(digest).to_numpy(np.uint64)
        hb = self.features["mention_b"].map(digest).to_numpy(np.uint64)
        return mix64(np.minimum(ha, hb) ^ mix64(np.maximum(ha, hb)))


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise: nearby inputs give unrelated outputs."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


@dataclass
class CandidateTable:
    """Every stored candidate pair of a domain: ids (a < b), blocker bits, embedding cosine."""

    a: np.ndarray
    b: np.ndarray
    blockers: np.ndarray
    cosine: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, rows: np.ndarray) -> CandidateTable:
        return CandidateTable(self.a[rows], self.b[rows], self.blockers[rows], self.cosine[rows])


def load_candidate_table(conn: Connection, domain: str) -> CandidateTable:
    rows = plain_rows(
        conn,
        select(
            candidate_pairs.c.mention_a,
            candidate_pairs.c.mention_b,
            candidate_pairs.c.blockers,
            candidate_pairs.c.cosine,
        ).where(candidate_pairs.c.domain == domain),
    )
    # cosine may be NULL: as a float column it becomes NaN
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    ids = table[:, :3].astype(np.int64)
    # sorted by (a, b) here: SQLite's ORDER BY built a temporary B-tree of a million rows
    order = np.argsort((ids[:, 0] << 32) | ids[:, 1], kind="stable")
    ids, cosine = ids[order], table[order, 3].astype(np.float32)
    return CandidateTable(ids[:, 0], ids[:, 1], ids[:, 2], cosine)


def load_candidate_features(
    conn: Connection, domain: str, frame: pd.DataFrame | None = None, cache: Path | None = None
) -> PairFeatures:
    """Every stored candidate pair of a domain with its comparison vector (`frame`: the domain's
    mentions, when the caller has loaded them already). With `cache` (a file path) the vectors are
    read from there when they are those of exactly these mentions, travel and pairs, and kept there
    when they are computed (`features.pool_cache`)."""
    frame = load_mentions(conn, domain) if frame is None else frame
    table = load_candidate_table(conn, domain)
    interactions = load_interactions(conn, domain)

    def compare_all() -> pd.DataFrame:
        return compare(MentionArrays.build(frame, interactions), table.a, table.b, table.cosine)

    if cache is None:
        return PairFeatures(frame, compare_all(), table.blockers)
    key = pool_key(frame_fingerprint(frame, domain), interactions)
    features = kept_or_compared(cache, key, table.a, table.b, table.blockers, table.cosine, compare_all)
    return PairFeatures(frame, features, table.blockers)


def features_for_pairs(
    conn: Connection,
    domain: str,
    encoder: str,
    a: np.ndarray,
    b: np.ndarray,
    frame: pd.DataFrame | None = None,
    pool: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Comparison vectors for any pairs of stored mentions (labelled pairs need not be candidates;
    `frame` as in `load_candidate_features`). With `pool`, the domain's candidate
    features, pairs that are all among them are read from it instead of compared again (the
    comparisons are symmetric, so either order of a pair reads its row), their cosine computed
    from the stored vectors like any pair's."""
    # only these mentions' vectors: all of them took 0.9 s at 100,000 mentions, for 50 labels
    pks, vectors = vectors_by_ids(conn, domain, encoder, np.concatenate([a, b]).tolist())
    order = np.argsort(pks, kind="stable")
    cosine = pair_cosines(pks[order], vectors[order], a, b)
    if pool is not None:
        rows = pool_rows(pool, a, b)
        if (rows >= 0).all():
            return _taken(pool, rows, a, b, cosine)
    frame = load_mentions(conn, domain) if frame is None else frame
    return compare(MentionArrays.build(frame, load_interactions(conn, domain)), a, b, cosine)


def pool_rows(pool: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The row of `pool` (a frame of pairs, mention_a < mention_b) holding each pair (a[i], b[i])
    in either order; -1 where it holds none."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    codes = (pool["mention_a"].to_numpy(np.int64) << 32) | pool["mention_b"].to_numpy(np.int64)
    wanted = (np.minimum(a, b) << 32) | np.maximum(a, b)
    order = np.argsort(codes, kind="stable")
    at = np.searchsorted(codes, wanted, sorter=order)
    at[at >= len(codes)] = 0
    rows = order[at] if len(codes) else np.zeros(len(wanted), np.int64)
    found = codes[rows] == wanted if len(codes) else np.zeros(len(wanted), bool)
    return np.where(found, rows, -1)


def _taken(
    pool: pd.DataFrame, rows: np.ndarray, a: np.ndarray, b: np.ndarray, cosine: np.ndarray
) -> pd.DataFrame:
    """The pool's vectors of these rows as `compare` lays out the pairs (a[i], b[i]) with these cosines."""
    columns = [c for c in pool.columns if c not in ("mention_a", "mention_b")]
    # the rows first: the whole pool's matrix is hundreds of MB, the labelled rows a few dozen
    matrix = np.asfortranarray(pool.iloc[rows][columns].to_numpy(np.float32))
    matrix[:, columns.index("embedding_cosine")] = cosine
    return pair_frame(a, b, matrix, columns)
