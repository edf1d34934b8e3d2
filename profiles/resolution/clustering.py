"""Clustering that does not chain strangers together.

Merge edges are applied strongest first with union-find (a person's merge weighs `MANUAL_SCORE`,
any other its decision's score). Two clusters are not joined when:
- a cannot-link pair lies across them: co-travellers of one booking or stay, and pairs with
  conflicting documents or dates of birth that the model itself did not judge a match (a typo'd
  or noisy value on a pair the model merges is not a conflict: the direct evidence wins);
- both already have several members and the scored pairs between them disagree on average: their
  mean is below `join_at` (a bounded re-check of at most 64 x 64 pairs),
  so one strong edge cannot weld two big groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


class PairScores:
    """Scores of node pairs, looked up many at a time: a million candidate pairs as sorted
    arrays, not a million-entry dict (building that dict was a tenth of a 100k-mention resolve)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, score: np.ndarray) -> None:
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        codes = (np.minimum(a, b) << 32) | np.maximum(a, b)
        order = np.argsort(codes, kind="stable")
        codes, score = codes[order], np.asarray(score, np.float64)[order]
        last = np.ones(len(codes), bool)  # a pair given twice keeps its later score
        last[:-1] = codes[1:] != codes[:-1]
        self.codes, self.scores = codes[last], score[last]

    @classmethod
    def of(cls, scores: Mapping[tuple[int, int], float]) -> PairScores:
        pairs = np.array(list(scores), np.int64).reshape(-1, 2)
        return cls(pairs[:, 0], pairs[:, 1], np.array(list(scores.values()), np.float64))

    def lookup(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The score of each pair (a[i], b[i]) in either order; NaN where the pair has none."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        return self._at((np.minimum(a, b) << 32) | np.maximum(a, b))

    def across(self, xs: list[int], ys: list[int]) -> np.ndarray:
        """The scores of every pair (x, y) of xs by ys (flattened); NaN where a pair has none."""
        x, y = np.asarray(xs, np.int64), np.asarray(ys, np.int64)
        return self._at(((np.minimum.outer(x, y) << 32) | np.maximum.outer(x, y)).ravel())

    def _at(self, codes: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.codes, codes)
        at[at >= len(self.codes)] = 0
        found = self.codes[at] == codes if len(self.codes) else np.zeros(len(codes), bool)
        return np.where(found, self.scores[at] if len(self.codes) else np.nan, np.nan)


@dataclass
class ClusterInputs:
    """Nodes 0..n-1; merge edges (a, b, score); cannot-link pairs; the scores of all scored pairs
    (decision scores, 0 for pairs judged no match) that the re-check compares groups by."""

    n: int
    edges: list[tuple[int, int, float]]
    cannot_link: list[tuple[int, int]] = field(default_factory=list)
    pair_scores: PairScores | Mapping[tuple[int, int], float] = field(default_factory=dict)
    # The mean score between two groups at which the re-check lets them join: a match as the
    # scores' own merge threshold sees it, never stricter than 0.5 (`join_threshold`).
    join_at: float = 0.5
    # Each node's rank in the order equal scores are taken in (the mentions' order keys,
    # `features.blocking.order`, not their arrival); default: the node numbers.
    rank: np.ndarray | None = None


@dataclass
class ClusterReport:
    joined: int = 0
    refused_cannot_link: int = 0
    refused_recheck: int = 0


MANUAL_SCORE = 2.0  # a person's merge: above every score, applied first and never refused
LARGE = 2  # clusters of this size or more on both sides get the re-check
SIDE = 64  # the re-check compares at most the first 64 members of each side (4,096 pairs)
JOIN_AT_MOST = 0.5


def join_threshold(merge_threshold: float) -> float:
    """The re-check's bar for a merge threshold: the groups' pairs must be a match on average.
    A model whose F1-best threshold is 0.29 scores its true pairs around there; a fixed 0.5 kept
    refusing them, leaving a person's name-only mentions in a profile of their own."""
    return min(JOIN_AT_MOST, merge_threshold)


def cluster(inputs: ClusterInputs) -> tuple[np.ndarray, ClusterReport]:
    n = inputs.n
    parent = list(range(n))
    size = [1] * n
    # per root of two or more: its members in the order they joined (the re-check reads the
    # first SIDE of each side); a lone node's members are itself
    members: dict[int, list[int]] = {}
    # per root: the nodes its members may not be joined with (merged as the groups merge, so a
    # join asks about each partner once, not about every member)
    forbidden: dict[int, set[int]] = {}
    for a, b in inputs.cannot_link:
        forbidden.setdefault(a, set()).add(b)
        forbidden.setdefault(b, set()).add(a)
    report = ClusterReport()
    scores = inputs.pair_scores
    if not isinstance(scores, PairScores):
        scores = PairScores.of(scores)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, score in _strongest_first(inputs):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        small, large = (ra, rb) if size[ra] <= size[rb] else (rb, ra)
        if score >= MANUAL_SCORE:
            pass
        elif small in forbidden and any(find(p) == large for p in forbidden[small]):
            report.refused_cannot_link += 1
            continue
        elif size[small] >= LARGE:
            cross = scores.across(members[small][:SIDE], members[large][:SIDE])
            known = cross[~np.isnan(cross)]
            if not len(known) or float(known.mean()) < inputs.join_at:
                report.refused_recheck += 1
                continue
        parent[small] = large
        size[large] += size[small]
        members.setdefault(large, [large]).extend(members.pop(small, [small]))
        if small in forbidden:
            mine, theirs = forbidden.pop(small), forbidden.get(large)
            if theirs is None:
                forbidden[large] = mine
            elif len(theirs) >= len(mine):
                theirs |= mine
            else:
                forbidden[large] = mine | theirs
        report.joined += 1
    return _roots(np.asarray(parent, np.int64)), report


def _strongest_first(inputs: ClusterInputs) -> list[tuple[int, int, float]]:
    """The merge edges, each from its lower-ranked end, by score (strongest first), then by the
    ranks of their ends; edges that tie on all three keep their given order."""
    if not inputs.edges:
        return []
    a, b, score = (np.asarray(column) for column in zip(*inputs.edges, strict=True))
    a, b, score = a.astype(np.int64), b.astype(np.int64), score.astype(np.float64)
    rank = np.asarray(inputs.rank, np.int64) if inputs.rank is not None else np.arange(inputs.n)
    swap = rank[a] > rank[b]
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    order = np.lexsort((rank[hi], rank[lo], -score))  # stable: the last key sorts first
    return list(zip(lo[order].tolist(), hi[order].tolist(), score[order].tolist(), strict=True))


def _roots(parent: np.ndarray) -> np.ndarray:
    """Each node's root, following the parent links to their end."""
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            return parent
        parent = up
