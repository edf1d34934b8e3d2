"""Clustering that does not chain strangers together.

Merge edges are applied strongest first with union-find. Two clusters are not joined when:
- a cannot-link pair lies across them: co-travellers of one booking or stay, and pairs with
  conflicting documents or dates of birth that the model itself did not judge a match (a typo'd
  or noisy value on a pair the model merges is not a conflict: the direct evidence wins);
- both already have several members and the scored pairs between them disagree on average (a
  bounded re-check of at most 64 x 64 pairs),
  so one strong edge cannot weld two big groups.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ClusterInputs:
    """Nodes 0..n-1; merge edges (a, b, score); cannot-link pairs; the scores of all scored pairs."""

    n: int
    edges: list[tuple[int, int, float]]
    cannot_link: list[tuple[int, int]] = field(default_factory=list)
    pair_scores: dict[tuple[int, int], float] = field(default_factory=dict)


@dataclass
class ClusterReport:
    joined: int = 0
    refused_cannot_link: int = 0
    refused_recheck: int = 0


MANUAL_SCORE = 2.0  # a person's merge: above every score, applied first and never refused
LARGE = 2  # clusters of this size or more on both sides get the re-check
RECHECK_MAX_PAIRS = 4096  # the re-check looks at no more cross pairs than this


def cluster(inputs: ClusterInputs) -> tuple[np.ndarray, ClusterReport]:
    parent = list(range(inputs.n))
    members: dict[int, list[int]] = {i: [i] for i in range(inputs.n)}
    forbidden: dict[int, set[int]] = defaultdict(set)
    for a, b in inputs.cannot_link:
        forbidden[a].add(b)
        forbidden[b].add(a)
    report = ClusterReport()

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, score in sorted(inputs.edges, key=lambda e: (-e[2], min(e[0], e[1]), max(e[0], e[1]))):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        small, large = (ra, rb) if len(members[ra]) <= len(members[rb]) else (rb, ra)
        if score >= MANUAL_SCORE:
            pass
        elif any(find(p) == large for m in members[small] for p in forbidden.get(m, ())):
            report.refused_cannot_link += 1
            continue
        elif len(members[small]) >= LARGE:
            cross = [
                inputs.pair_scores.get((min(x, y), max(x, y)))
                for x in members[small][:64]
                for y in members[large][:64]
            ][:RECHECK_MAX_PAIRS]
            known = [s for s in cross if s is not None]
            if not known or float(np.mean(known)) < 0.5:
                report.refused_recheck += 1
                continue
        parent[small] = large
        members[large].extend(members.pop(small))
        report.joined += 1
    labels = np.array([find(i) for i in range(inputs.n)], dtype=np.int64)
    return labels, report
