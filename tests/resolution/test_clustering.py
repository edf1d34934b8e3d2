from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.resolution.clustering import (
    MANUAL_SCORE,
    ClusterInputs,
    PairScores,
    cluster,
    join_threshold,
)
from profiles.resolution.identity import assign_ids


def groups(labels: np.ndarray) -> list[set[int]]:
    out: dict[int, set[int]] = {}
    for node, label in enumerate(labels.tolist()):
        out.setdefault(label, set()).add(node)
    return sorted(out.values(), key=min)


def test_strongest_edges_first_and_cannot_link_stops_chaining() -> None:
    # 0-1 and 2-3 are pairs; a weak edge 1-2 would chain them, but 0 and 3 travelled together.
    inputs = ClusterInputs(4, [(0, 1, 0.99), (2, 3, 0.98), (1, 2, 0.6)], cannot_link=[(0, 3)])
    labels, report = cluster(inputs)
    assert groups(labels) == [{0, 1}, {2, 3}]
    assert report.refused_cannot_link == 1 and report.joined == 2


def test_recheck_refuses_to_weld_clusters_whose_members_disagree() -> None:
    scores = {(0, 2): 0.1, (0, 3): 0.05, (1, 3): 0.2, (1, 2): 0.7}
    inputs = ClusterInputs(4, [(0, 1, 0.99), (2, 3, 0.99), (1, 2, 0.7)], pair_scores=scores)
    labels, report = cluster(inputs)
    assert groups(labels) == [{0, 1}, {2, 3}] and report.refused_recheck == 1
    agreeing = {(0, 2): 0.9, (0, 3): 0.8, (1, 3): 0.9, (1, 2): 0.7}
    labels, _ = cluster(ClusterInputs(4, [(0, 1, 0.99), (2, 3, 0.99), (1, 2, 0.7)], pair_scores=agreeing))
    assert groups(labels) == [{0, 1, 2, 3}]


def test_recheck_asks_for_a_match_as_the_models_threshold_sees_it() -> None:
    # the same person's two groups, scored around a low-calibrated model's merge threshold (0.3)
    scores = {(0, 2): 0.35, (0, 3): 0.3, (1, 3): 0.4, (1, 2): 0.45}
    edges = [(0, 1, 0.99), (2, 3, 0.99), (1, 2, 0.45)]
    labels, _ = cluster(ClusterInputs(4, edges, pair_scores=scores, join_at=join_threshold(0.3)))
    assert groups(labels) == [{0, 1, 2, 3}]
    labels, _ = cluster(ClusterInputs(4, edges, pair_scores=scores, join_at=join_threshold(0.9)))
    assert groups(labels) == [{0, 1}, {2, 3}]  # never stricter than 0.5, never looser than the model
    assert join_threshold(0.9) == 0.5 and join_threshold(0.3) == 0.3


def test_pair_scores_look_up_either_order_and_keep_the_later_score() -> None:
    # a candidate pair first at 0 (no match), then its decision's score: the decision wins
    scores = PairScores(np.array([5, 1, 2]), np.array([1, 7, 9]), np.array([0.0, 0.4, 0.3]))
    scores = PairScores(
        np.concatenate([scores.codes >> 32, [1]]),
        np.concatenate([scores.codes & 0xFFFFFFFF, [5]]),
        np.concatenate([scores.scores, [0.8]]),
    )
    found = scores.lookup(np.array([5, 1, 7, 3]), np.array([1, 5, 1, 4]))
    assert found[:3].tolist() == [0.8, 0.8, 0.4] and np.isnan(found[3])
    across = scores.across([1, 2], [5, 7, 9])  # (1,5) (1,7) (1,9) (2,5) (2,7) (2,9)
    assert np.allclose(across, [0.8, 0.4, np.nan, np.nan, np.nan, 0.3], equal_nan=True)
    assert np.isnan(
        PairScores(np.zeros(0), np.zeros(0), np.zeros(0)).lookup(np.array([1]), np.array([2]))
    ).all()


def test_ids_survive_merges_and_splits() -> None:
    created = {"OLD": "2023-01-01", "NEW": "2024-01-01"}
    # a merge of OLD (1 member) and NEW (2 members) keeps the older id; NEW becomes an alias
    ids, retired = assign_ids(np.array([0, 0, 0]), ["OLD", "NEW", "NEW"], created)
    assert ids == ["OLD"] * 3 and retired == {"NEW"}
    # a split keeps the id on the larger part; the smaller part gets a new id
    ids, retired = assign_ids(np.array([0, 0, 1]), ["OLD", "OLD", "OLD"], created)
    assert ids[:2] == ["OLD", "OLD"] and ids[2].startswith("P-") and ids[2] != "OLD" and not retired
    # unchanged clusters keep their ids; new mentions join without changing them
    ids, _ = assign_ids(np.array([0, 0, 1]), ["OLD", None, None], created)
    assert ids[0] == ids[1] == "OLD" and ids[2] not in {"OLD", "NEW"}


def test_equal_scores_are_taken_in_rank_order_whatever_the_node_numbers() -> None:
    """Two guests of one booking (a cannot-link) who could each join the same people at the same
    score: which one does follows the ranks (the mentions' order keys), so the same mentions
    numbered another way (another order of arrival) group the same."""
    edges = [(0, 2, 0.9), (0, 3, 0.9), (1, 2, 0.9), (1, 3, 0.9)]  # 0, 1 the guests
    rank = np.array([0, 1, 2, 3])
    swap = [1, 0, 3, 2]  # mention m is node swap[m] in the other numbering (its own inverse)
    renamed = [(swap[a], swap[b], score) for a, b, score in edges]
    first, _ = cluster(ClusterInputs(4, edges, cannot_link=[(0, 1)], rank=rank))
    second, _ = cluster(ClusterInputs(4, renamed, cannot_link=[(1, 0)], rank=rank[swap]))
    back = [{swap[node] for node in group} for group in groups(second)]
    assert sorted(back, key=min) == groups(first) == [{0, 2, 3}, {1}]
    # by node numbers alone the other guest would have joined in the other numbering
    plain, _ = cluster(ClusterInputs(4, renamed, cannot_link=[(1, 0)]))
    assert sorted(({swap[n] for n in g} for g in groups(plain)), key=min) != groups(first)


def test_a_rules_merge_weighs_at_least_a_model_merge_at_the_threshold() -> None:
    import pandas as pd

    from pipelines.assign import cluster_inputs

    # Two groups of one person ({0, 1} and {2, 3} by the model) that the rules tie across:
    # the model put its doubt (0.05) on the rule's pairs, and the re-check must not read that doubt
    # as the groups disagreeing.
    effective = pd.DataFrame(
        {
            "a": [0, 2, 1, 0, 1],
            "b": [1, 3, 2, 2, 3],
            "decision": ["merge", "merge", "merge", "merge", "merge"],
            "source": ["model", "model", "rule", "rule", "rule"],
            "score": [0.9, 0.95, 0.05, 0.04, 0.06],
        }
    )
    pks = np.arange(4)
    inputs = cluster_inputs(effective, pks[:0], pks[:0], 4, pks, merge_threshold=0.4)
    assert sorted(s for _, _, s in inputs.edges) == [0.4, 0.4, 0.4, 0.9, 0.95]
    labels, report = cluster(inputs)
    assert groups(labels) == [{0, 1, 2, 3}] and report.refused_recheck == 0
    # the model's own doubt still counts: the same pairs as model reviews keep the groups apart
    doubted = effective.assign(
        decision=["merge", "merge", "merge", "review", "review"],
        source=["model", "model", "rule", "model", "model"],
    )
    labels, report = cluster(cluster_inputs(doubted, pks[:0], pks[:0], 4, pks, merge_threshold=0.4))
    assert groups(labels) == [{0, 1}, {2, 3}] and report.refused_recheck == 1


edge_lists = st.integers(2, 30).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from([0.4, 0.6, 0.9, 2.0])),
            max_size=60,
        ),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=8),
        st.permutations(list(range(n))),
    )
)


@settings(max_examples=300, deadline=None)
@given(edge_lists, st.randoms(use_true_random=False))
def test_the_clusters_follow_the_edges_not_their_order(drawn: Any, rnd: Any) -> None:
    """Any order of the same edges (distinct pairs) gives the same clusters, a cannot-link pair
    ends apart unless a person merged across it, and every cluster is held together by edges."""
    n, raw, cannot, rank = drawn
    edges = list({(min(a, b), max(a, b)): (a, b, s) for a, b, s in raw if a != b}.values())
    cannot = [(a, b) for a, b in cannot if a != b]
    scores = {(a, b): 0.7 for a, b, _ in edges}
    first, report = cluster(ClusterInputs(n, edges, cannot, scores, rank=np.array(rank)))
    shuffled = [(b, a, s) if rnd.random() < 0.5 else (a, b, s) for a, b, s in edges]
    rnd.shuffle(shuffled)
    again, again_report = cluster(ClusterInputs(n, shuffled, cannot, scores, rank=np.array(rank)))
    assert groups(first) == groups(again) and vars(report) == vars(again_report)
    manual = {frozenset((a, b)) for a, b, s in edges if s >= MANUAL_SCORE}
    if not manual:
        assert all(first[a] != first[b] for a, b in cannot)
    # a cluster is connected by the edges inside it
    for group in groups(first):
        reached, frontier = {min(group)}, [min(group)]
        while frontier:
            node = frontier.pop()
            for a, b, _ in edges:
                for x, y in ((a, b), (b, a)):
                    if x == node and y in group and y not in reached:
                        reached.add(y)
                        frontier.append(y)
        assert reached == group
