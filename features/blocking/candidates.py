"""The union of every blocker's pairs, with each pair's provenance, and its evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.blocking.blockers import Blocker
from features.blocking.keys import (
    block_limit,
    home_keys,
    key_tables,
    pairs_from_keys,
    travel_keys,
    with_contact_holders,
)
from features.blocking.strings import string_pairs
from features.comparisons import MentionArrays, agrees_beyond_name, compare


@dataclass(frozen=True)
class BlockingConfig:
    max_block: int = 50  # a key shared by more mentions is a shared/corporate value, not a person
    max_name_block: int = 30  # the same for name-derived keys (common names make big blocks)
    knn: int = 5
    knn_floor: float = 0.75
    string_k: int = 3
    string_threshold: float = 0.88


@dataclass
class CandidatePairs:
    """Pairs a < b (mention ids), the blockers that proposed each, and the embedding cosine."""

    a: np.ndarray
    b: np.ndarray
    blockers: np.ndarray
    cosine: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    giant_keys: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.a)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "mention_a": self.a,
                "mention_b": self.b,
                "blockers": self.blockers,
                "cosine": self.cosine if len(self.cosine) == len(self.a) else np.nan,
            }
        )


def union(parts: list[tuple[np.ndarray, np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge (a, b, flag) arrays into unique pairs with their flags OR-ed together."""
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    codes = np.concatenate([(a.astype(np.int64) << 32) | b.astype(np.int64) for a, b, _ in parts])
    flags = np.concatenate([np.full(len(a), flag, np.int64) for a, _, flag in parts])
    if len(codes) == 0:
        return codes, codes.copy(), flags
    order = np.argsort(codes, kind="stable")
    codes, flags = codes[order], flags[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    unique = codes[starts]
    merged = np.bitwise_or.reduceat(flags, starts) if len(flags) else flags
    return unique >> 32, unique & 0xFFFFFFFF, merged


def knn_pairs(ids: np.ndarray, neighbour_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) from a kNN result: row i of `neighbour_ids` holds the neighbours of ids[i]."""
    k = neighbour_ids.shape[1] if neighbour_ids.ndim == 2 else 0
    left = np.repeat(ids.astype(np.int64), k)
    right = neighbour_ids.ravel().astype(np.int64)
    keep = (right >= 0) & (right != left)
    left, right = left[keep], right[keep]
    return np.minimum(left, right), np.maximum(left, right)


def block(
    frame: pd.DataFrame,
    config: BlockingConfig,
    embedding_pairs: tuple[np.ndarray, np.ndarray] | None = None,
    interactions: pd.DataFrame | None = None,
) -> CandidatePairs:
    """Candidate pairs of a mention frame from the deterministic keys, shared travel, the string
    pass and (when given) the embedding neighbours."""
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    giant: dict[str, int] = {}
    tables = key_tables(frame)
    if interactions is not None and len(interactions):
        travel = travel_keys(interactions, frame["mention_pk"])
        tables[Blocker.TRAVEL] = with_contact_holders(travel, tables[Blocker.EMAIL], tables[Blocker.PHONE])
    tables[Blocker.HOME] = home_keys(frame, interactions)
    for blocker, keys in tables.items():
        limit = block_limit(blocker, config.max_block, config.max_name_block)
        a, b, skipped = pairs_from_keys(keys, limit)
        parts.append((a, b, int(blocker)))
        if skipped:
            giant[str(blocker.name).lower()] = skipped
    a, b = string_pairs(frame, config.string_k, config.string_threshold)
    parts.append((a, b, int(Blocker.STRING)))
    if embedding_pairs is not None:
        parts.append((*embedding_pairs, int(Blocker.EMBEDDING)))
    a, b, flags = union(parts)
    return CandidatePairs(a, b, flags, giant_keys=giant)


def true_pairs(frame: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of stored mentions that the truth file puts in the same person."""
    known = frame[["mention_pk", "mention_key"]].merge(truth, on="mention_key")
    merged = known.merge(known, on="person_id", suffixes=("_a", "_b"))
    merged = merged[merged["mention_pk_a"] < merged["mention_pk_b"]]
    return merged["mention_pk_a"].to_numpy(np.int64), merged["mention_pk_b"].to_numpy(np.int64)


def _transitive_recall(ta: np.ndarray, tb: np.ndarray, found: np.ndarray) -> float:
    """Share of true pairs joined by a path of true candidate pairs: what clustering can reach."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(ta) == 0:
        return 1.0
    nodes, inverse = np.unique(np.concatenate([ta, tb]), return_inverse=True)
    ia, ib = inverse[: len(ta)], inverse[len(ta) :]
    graph = coo_matrix((np.ones(int(found.sum())), (ia[found], ib[found])), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    return float((labels[ia] == labels[ib]).mean())


def evaluate(
    frame: pd.DataFrame,
    pairs: CandidatePairs,
    truth: pd.DataFrame,
    arrays: MentionArrays | None = None,
) -> dict[str, Any]:
    """Blocking recall, candidates per mention, reduction ratio and each blocker's contribution.

    With the frame's comparison `arrays`, also the recall over the true pairs that agree on
    something besides the name (`recall_beyond_name`): true pairs that share only a common name,
    or nothing, no blocker can tell from that name's other people, and only clustering reaches
    them (through a third mention: `transitive_recall`).
    """
    ta, tb = true_pairs(frame, truth)
    true_codes = (ta << 32) | tb
    cand_codes = (pairs.a.astype(np.int64) << 32) | pairs.b.astype(np.int64)
    found = np.isin(true_codes, cand_codes)
    n = len(frame)
    all_pairs = n * (n - 1) // 2
    flags_of_true = (
        pairs.blockers[np.searchsorted(cand_codes, true_codes[found])]
        if found.any()
        else np.zeros(0, np.int64)
    )
    per_blocker = {}
    for blocker in Blocker:
        mine = (pairs.blockers & int(blocker)) != 0
        true_mine = (flags_of_true & int(blocker)) != 0
        only_mine = flags_of_true == int(blocker)
        per_blocker[str(blocker.name).lower()] = {
            "pairs": int(mine.sum()),
            "true_pairs_found": int(true_mine.sum()),
            "recall": round(float(true_mine.sum() / max(len(true_codes), 1)), 4),
            "found_by_it_alone": int(only_mine.sum()),
        }
    beyond_name: dict[str, Any] = {}
    if arrays is not None:
        agrees = agrees_beyond_name(compare(arrays, ta, tb)) if len(ta) else np.zeros(0, bool)
        beyond_name = {
            "true_pairs_beyond_name": int(agrees.sum()),
            "recall_beyond_name": round(float(found[agrees].mean()) if agrees.any() else 1.0, 5),
        }
    return {
        "mentions": n,
        "true_pairs": len(true_codes),
        "candidate_pairs": len(pairs),
        "recall": round(float(found.mean()) if len(found) else 1.0, 5),
        "transitive_recall": round(_transitive_recall(ta, tb, found), 5),
        **beyond_name,
        "candidates_per_mention": round(len(pairs) / max(n, 1), 3),
        "reduction_ratio": round(1 - len(pairs) / max(all_pairs, 1), 6),
        "precision_of_candidates": round(float(found.sum() / max(len(pairs), 1)), 5),
        "blockers": per_blocker,
        "giant_keys_skipped": pairs.giant_keys,
    }
