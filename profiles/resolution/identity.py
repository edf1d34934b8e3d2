"""Stable profile ids: a cluster keeps the id most of its members already had.

When clusters merge, the merged one keeps the older id (the one more members held, then the
older by creation) and the other becomes an alias; when a cluster splits, the larger part keeps
the id. New clusters get new ids.
"""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np


def new_profile_id() -> str:
    return f"P-{uuid.uuid4().hex[:16]}"


def assign_ids(
    labels: np.ndarray, previous: list[str | None], created: dict[str, str]
) -> tuple[list[str], set[str]]:
    """Profile id of every node, given each node's previous profile id (or None) and the creation
    time (sortable) of existing ids. Returns (ids, previous ids no longer used, now aliases).

    Each previous id goes with the cluster holding most of its former members (a split keeps the
    id on the larger part); a cluster offered several ids keeps the oldest (a merge keeps the older).
    """
    holders: dict[str, Counter[int]] = {}
    for node, label in enumerate(labels.tolist()):
        pid = previous[node]
        if pid:
            holders.setdefault(pid, Counter())[label] += 1
    offered: dict[int, list[tuple[str, str]]] = {}
    for pid, counts in holders.items():
        label = max(counts, key=lambda lab: (counts[lab], -lab))
        offered.setdefault(label, []).append((created.get(pid, ""), pid))
    chosen = {label: min(options)[1] for label, options in offered.items()}
    fresh: dict[int, str] = {}
    out = []
    for label in labels.tolist():
        if label not in chosen and label not in fresh:
            fresh[label] = new_profile_id()
        out.append(chosen.get(label) or fresh[label])
    retired = set(holders) - set(chosen.values())
    return out, retired
