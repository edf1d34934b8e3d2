"""`upt evaluate`: quality of the current assignment against a truth file, and what kind of
errors make up what is wrong, so a data scientist knows which evidence is missing.

Every wrong pair is one of two things: a false merge (one profile, two people) or a missed match
(one person, two profiles). Each is put in the first kind whose description fits it, read from the
pair's comparison vector; counts over at most `limit` sampled pairs are scaled to all pairs.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from features.comparisons import MentionArrays, compare
from features.embedding.similarity import pair_cosines
from features.frame import load_interactions, load_mentions
from features.pairs import load_candidate_table
from profiles.errors import NotReady
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.profiles_io import assignment_rows
from profiles.store.vectors import load_vectors
from training.metrics import cluster_scores

LIMIT = 100_000


def _f(features: pd.DataFrame, name: str) -> np.ndarray:
    return features[name].to_numpy(np.float64)


def false_merge_kinds(features: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Kinds of two different people put in one profile, in the order they are tried."""
    last_same = _f(features, "last_jw") >= 0.92
    first_differs = (_f(features, "first_jw") < 0.85) & (_f(features, "first_nickname_eq") != 1)
    shared_place = (
        (_f(features, "email_exact") == 1)
        | (_f(features, "phone_exact") == 1)
        | (_f(features, "street_token_set") >= 0.9)
        | (_f(features, "shared_booking") == 1)
    )
    similar_names = (_f(features, "first_jw") >= 0.9) & (_f(features, "last_jw") >= 0.9)
    return [
        (
            "household (same last name and contact, another first name)",
            last_same & first_differs & shared_place,
        ),
        (
            "co-travellers (one booking)",
            (_f(features, "travelled_together") == 1) | (_f(features, "shared_booking") == 1),
        ),
        (
            "conflicting birth date or document",
            (_f(features, "dob_conflict") == 1) | (_f(features, "document_conflict") == 1),
        ),
        (
            "namesakes (similar names, no shared identifier)",
            similar_names & (_f(features, "shared_strong_ids") == 0),
        ),
        (
            "shared contact (same email or phone)",
            (_f(features, "email_exact") == 1) | (_f(features, "phone_exact") == 1),
        ),
    ]


def missed_match_kinds(features: pd.DataFrame, candidate: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Kinds of one person left in two profiles, in the order they are tried."""
    first_jw = _f(features, "first_jw")
    last_jw = _f(features, "last_jw")
    no_evidence = (_f(features, "shared_strong_ids") == 0) & (_f(features, "dob_exact") != 1)
    return [
        ("never compared (blocking did not propose the pair)", ~candidate),
        ("nickname (Bob ~ Robert)", (_f(features, "first_nickname_eq") == 1) & (first_jw < 0.9)),
        ("swapped first and last name", _f(features, "name_swap") >= 0.9),
        (
            "name typo or spelling variant",
            ((first_jw < 1) | (last_jw < 1)) & (np.fmin(first_jw, last_jw) >= 0.75),
        ),
        ("no shared identifier or birth date", no_evidence),
        (
            "conflicting birth date or document",
            (_f(features, "dob_conflict") == 1) | (_f(features, "document_conflict") == 1),
        ),
    ]


def _cross_pairs(groups: dict[str, list[int]], by: dict[int, str]) -> Iterator[tuple[int, int]]:
    """Pairs of members of one group whose `by` differs."""
    for members in groups.values():
        for i, x in enumerate(members):
            for y in members[i + 1 :]:
                if by[x] != by[y]:
                    yield (x, y)


def _count_cross(groups: dict[str, list[int]], by: dict[int, str]) -> int:
    total = 0
    for members in groups.values():
        sizes: dict[str, int] = defaultdict(int)
        for m in members:
            sizes[by[m]] += 1
        n = len(members)
        total += n * (n - 1) // 2 - sum(s * (s - 1) // 2 for s in sizes.values())
    return total


def _sample(pairs: Iterator[tuple[int, int]], limit: int, seed: int = 0) -> list[tuple[int, int]]:
    """Reservoir sample: every pair equally likely, memory bounded by `limit`."""
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    for i, pair in enumerate(pairs):
        if i < limit:
            out.append(pair)
        else:
            j = rng.randrange(i + 1)
            if j < limit:
                out[j] = pair
    return out


def evaluate_store(
    store: Store, settings: Settings, truth: pd.DataFrame, limit: int = LIMIT
) -> dict[str, Any]:
    """Pairwise and B-cubed scores of the stored assignment, and the breakdown of its errors."""
    person = dict(zip(truth["mention_key"], truth["person_id"], strict=True))
    with store.reading() as conn:
        assigned = dict(assignment_rows(conn, store.domain))
        if not assigned:
            raise NotReady(
                f"no mention of domain {store.domain!r} is in a profile yet: run `upt resolve` first"
            )
        scores: dict[str, Any] = {k: round(v, 5) for k, v in cluster_scores(person, assigned).items()}
        frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
        interactions = load_interactions(conn, store.domain)
        table = load_candidate_table(conn, store.domain)
        vectors = load_vectors(conn, store.domain, settings.encoder)
    frame = frame[frame["mention_key"].isin(person)]
    pk = frame["mention_pk"].tolist()
    truth_of = dict(zip(pk, frame["mention_key"].map(person), strict=True))
    profile_of = {p: assigned.get(k, f"__single__{k}") for p, k in zip(pk, frame["mention_key"], strict=True)}
    by_profile: dict[str, list[int]] = defaultdict(list)
    by_person: dict[str, list[int]] = defaultdict(list)
    for p in pk:
        by_profile[profile_of[p]].append(p)
        by_person[truth_of[p]].append(p)
    arrays = MentionArrays.build(frame, interactions)
    candidates = set(zip(table.a.tolist(), table.b.tolist(), strict=True))
    breakdown = {}
    for name, groups, other in (
        ("false_merges", by_profile, truth_of),
        ("missed_matches", by_person, profile_of),
    ):
        total = _count_cross(groups, other)
        sample = _sample(_cross_pairs(groups, other), limit)
        a = np.array([min(x, y) for x, y in sample], np.int64)
        b = np.array([max(x, y) for x, y in sample], np.int64)
        features = compare(arrays, a, b, pair_cosines(*vectors, a, b))
        candidate = np.array(
            [(x, y) in candidates for x, y in zip(a.tolist(), b.tolist(), strict=True)], bool
        )
        kinds = (
            false_merge_kinds(features) if name == "false_merges" else missed_match_kinds(features, candidate)
        )
        left = np.ones(len(sample), bool)
        counts: dict[str, int] = {}
        scale = total / len(sample) if sample else 0.0
        for kind, mask in kinds:
            hit = left & mask
            counts[kind] = round(float(hit.sum()) * scale)
            left &= ~hit
        counts["other"] = round(float(left.sum()) * scale)
        breakdown[name] = {
            "pairs": total,
            "sampled": len(sample),
            "kinds": {k: v for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v},
        }
    scores["errors"] = breakdown
    return scores
