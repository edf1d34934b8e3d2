"""From decisions to profiles, for a whole domain or one online component: the same code.

`assign` takes the mentions at stake (a domain's, or the connected component one new mention
touches: every mention linked to it through merge decisions or a shared profile), their current
membership, this run's decisions and the decisions in effect, and the candidate pairs among them;
it clusters (`profiles.resolution.clustering`), keeps profile ids stable, refreshes golden
records, and says which merges and splits happened and what goes to review. Clustering a
component alone gives what clustering the whole domain gives for it: no merge decision leaves
it, and the guards only compare its own members. `write_assignment` writes it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from features.blocking.order import order_keys
from pipelines.decide import APART
from profiles.resolution.clustering import (
    MANUAL_SCORE,
    ClusterInputs,
    ClusterReport,
    PairScores,
    cluster,
    join_threshold,
)
from profiles.resolution.golden import Survivorship, golden_records
from profiles.resolution.identity import assign_ids
from profiles.store.decisions import DecisionColumns, record_decision_columns, record_event
from profiles.store.locks import changed_since
from profiles.store.profiles_io import Membership, members_of_profiles, queue_reviews, write_profiles

Step = Callable[[str, int], Callable[[int], None]]


def _quiet(_: str, __: int) -> Callable[[int], None]:
    return lambda n: None


def _rank(score: float | None) -> float:
    return -1.0 if score is None or score != score else float(score)  # NaN != NaN


def review_items(
    changes: DecisionColumns, profile_of: dict[str, str], version: str | None
) -> list[dict[str, Any]]:
    """What the review queue gets from this run's review decisions: one item per pair of profiles
    that stayed apart, its highest-scoring mention pair. A review-band pair whose mentions ended
    in one profile anyway asks nothing a reviewer can act on, and a hundred pairs between the
    same two profiles ask one question a hundred times."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for a, b, decision, score in zip(
        changes["mention_a"], changes["mention_b"], changes["decision"], changes["score"], strict=True
    ):
        if decision != "review":
            continue
        left, right = profile_of[a], profile_of[b]
        if left == right:
            continue
        key = (left, right) if left < right else (right, left)
        held = best.get(key)
        if held is None or _rank(score) > _rank(held["score"]):
            best[key] = {"mention_a": a, "mention_b": b, "score": score, "model_version": version}
    return list(best.values())


VOID = "void: no longer a candidate pair"  # the actor of a decision withdrawn by new content


def merge_decisions(
    decided: pd.DataFrame,
    current: pd.DataFrame,
    key_of: pd.Series,
    pk_of: dict[str, int],
    version: str,
    dirty: np.ndarray | None = None,
) -> tuple[DecisionColumns, pd.DataFrame]:
    """(decisions to record, by column: those that differ from the pair's current one; every pair's
    decision in effect now, by mention id). Manual decisions stand until a person changes them.
    A stored decision about a mention whose content changed (`dirty`) that was not decided again
    (the new content is no candidate of the other mention any more) is withdrawn: it was about
    what the mention said before, so it becomes "no match" (recorded, actor `VOID`).

    Pairs are matched by mention ids packed into one integer (a stored decision names its mentions
    by key; keys of mentions no longer stored match nothing): a join on two string columns took
    seconds at a million pairs."""
    # Columns are taken out once as arrays: pandas costs per call, and an online request decides
    # a few dozen pairs where the batch decides millions.
    a, b = decided["a"].to_numpy(np.int64), decided["b"].to_numpy(np.int64)
    current_a, current_b = current["mention_a"].tolist(), current["mention_b"].tolist()
    ca = np.array([pk_of.get(k, -1) for k in current_a], np.int64)
    cb = np.array([pk_of.get(k, -1) for k in current_b], np.int64)
    current_decision = current["decision"].to_numpy(object)
    current_source = current["source"].to_numpy(object)
    live = (ca >= 0) & (cb >= 0)
    stored_code = np.where(live, (ca << 32) | np.maximum(cb, 0), -1)
    decided_code = (a << 32) | b
    at = pd.Index(stored_code[live]).get_indexer(decided_code)  # latest decision: one row per pair
    found = at >= 0
    rows = np.flatnonzero(live)[at[found]]
    old_decision = np.full(len(decided), None, dtype=object)
    old_source = np.full(len(decided), None, dtype=object)
    old_decision[found] = current_decision[rows]
    old_source[found] = current_source[rows]
    # the stored decisions decided again in this run (stored pairs are unique: the index above)
    redecided = np.zeros(len(current), bool)
    redecided[rows] = True
    decision, source = decided["decision"].to_numpy(object), decided["source"].to_numpy(object)
    score = decided["score"].to_numpy(np.float64)
    manual = old_source == "manual"
    same = found & (old_decision == decision) & (old_source == source)
    record = ~manual & ~same & ~(~found & (decision == "no_match"))
    key = key_of.to_dict()
    columns: DecisionColumns = {
        "mention_a": [key[x] for x in a[record].tolist()],
        "mention_b": [key[x] for x in b[record].tolist()],
        "decision": decision[record].tolist(),
        "source": source[record].tolist(),
        "score": score[record].tolist(),
        "rule": decided["rule"].to_numpy(object)[record].tolist(),
        "actor": decided["actor"].to_numpy(object)[record].tolist(),
        "model_version": [None if s == "external" else version for s in source[record].tolist()],
        "threshold": [
            None if np.isnan(t) else t for t in decided["threshold"].to_numpy(np.float64)[record].tolist()
        ],
    }
    is_manual = current_source == "manual"
    stale = np.zeros(len(current), bool)
    if dirty is not None and len(dirty):
        stale = live & ~is_manual & ~redecided & (np.isin(ca, dirty) | np.isin(cb, dirty))
        stale &= current_decision != "no_match"
        if stale.any():
            n = int(stale.sum())
            for column, values in (
                ("mention_a", [k for k, s in zip(current_a, stale.tolist(), strict=True) if s]),
                ("mention_b", [k for k, s in zip(current_b, stale.tolist(), strict=True) if s]),
                ("decision", ["no_match"] * n),
                ("source", [s or "model" for s in current_source[stale].tolist()]),
                ("score", [None] * n),
                ("rule", [None] * n),
                ("actor", [VOID] * n),
                ("model_version", [version] * n),
                ("threshold", [None] * n),
            ):
                columns[column] = columns[column] + values
    # stored decisions still in effect: pairs not decided in this run, and every manual one
    keep = live & ~stale & (~redecided | is_manual)
    current_score = pd.to_numeric(current["score"], errors="coerce").to_numpy(np.float64)
    effective = pd.DataFrame(
        {
            "a": np.concatenate([a[~manual], ca[keep]]),
            "b": np.concatenate([b[~manual], cb[keep]]),
            "decision": np.concatenate([decision[~manual], current_decision[keep]]),
            "source": np.concatenate(
                [
                    source[~manual],
                    np.array([s or "model" for s in current_source[keep].tolist()], dtype=object),
                ]
            ),
            "score": np.concatenate([score[~manual], np.nan_to_num(current_score[keep], nan=0.0)]),
        }
    )
    return columns, effective


def cluster_inputs(
    effective: pd.DataFrame,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    n: int,
    pks: np.ndarray,
    merge_threshold: float = 1.0,
    keys: np.ndarray | None = None,
) -> ClusterInputs:
    """The clustering's inputs for the mentions `pks` (`keys`: their mention keys, whose order
    keys break ties between equal scores; without them, the ids do)."""
    node = pd.Index(pks)
    a = node.get_indexer(effective["a"].to_numpy(np.int64))
    b = node.get_indexer(effective["b"].to_numpy(np.int64))
    if len(a) and min(a.min(), b.min()) < 0:
        raise RuntimeError("a decision names a mention that is not stored")  # a bug, never data
    decision, source = effective["decision"].to_numpy(object), effective["source"].to_numpy(object)
    merge = decision == "merge"
    # A rule's merge weighs at least what a model merge at the threshold does: its stored score
    # is the model's probability, which a model that learned from its 50 labels to doubt name
    # and home evidence put at 0.05 on pairs the rules merged, and the re-check, which weighs
    # two groups by the scores across them, then kept a household's trips apart from the guest
    # they were booked for (a travel set's recall 0.79 on one labelling seed, 0.90 on the others).
    score = effective["score"].to_numpy(np.float64)
    score = np.where(merge & (source == "rule"), np.fmax(score, min(merge_threshold, 1.0)), score)
    manual = source == "manual"
    weight = np.where(manual, MANUAL_SCORE, score)
    apart = (decision == APART) | (manual & (decision == "no_match"))
    # The re-check compares two groups by the scores between them: the score of each merge,
    # review or cannot-link decision, 0 for candidate pairs judged no match (whose scores are not
    # kept), so that an incremental and a full run cluster the same decisions the same way.
    ta, tb = node.get_indexer(pair_a), node.get_indexer(pair_b)
    live = (ta >= 0) & (tb >= 0)
    lo = np.concatenate([np.minimum(ta, tb)[live], np.minimum(a, b)])
    hi = np.concatenate([np.maximum(ta, tb)[live], np.maximum(a, b)])
    value = np.concatenate([np.zeros(int(live.sum())), np.where(decision != "no_match", score, 0.0)])
    scores = PairScores(lo, hi, value)  # decisions last: they win
    return ClusterInputs(
        n=n,
        edges=list(zip(a[merge].tolist(), b[merge].tolist(), weight[merge].tolist(), strict=True)),
        cannot_link=list(zip(a[apart].tolist(), b[apart].tolist(), strict=True)),
        pair_scores=scores,
        join_at=join_threshold(merge_threshold),
        rank=None if keys is None else np.argsort(np.lexsort((pks, order_keys(keys))), kind="stable"),
    )


def survivors_of(
    retired: set[str], state: Membership, pks: np.ndarray, ids: list[str]
) -> dict[str, str | None]:
    now = dict(zip(pks.tolist(), ids, strict=True))
    holders: dict[str, Counter[str]] = defaultdict(Counter)
    for pk, pid in state.members.items():
        if pid in retired and pk in now:
            holders[pid][now[pk]] += 1
    return {pid: (holders[pid].most_common(1)[0][0] if holders[pid] else None) for pid in retired}


def membership_events(
    state: Membership, frame: pd.DataFrame, survivors: dict[str, str | None], ids: list[str], pks: np.ndarray
) -> list[tuple[str, str, dict[str, Any], dict[str, Any], str]]:
    """Merges (previous profiles now one) and splits (one previous profile now several), each with
    the exact membership and golden records before, so that an unmerge can restore them."""
    key_of = dict(zip(pks.tolist(), frame["mention_key"].tolist(), strict=True))
    now = dict(zip(pks.tolist(), ids, strict=True))
    before_members: dict[str, list[str]] = defaultdict(list)
    for pk, pid in state.members.items():
        if pk in key_of:
            before_members[pid].append(key_of[pk])
    after_members: dict[str, list[str]] = defaultdict(list)
    for pk, pid in now.items():
        after_members[pid].append(key_of[pk])
    events = []
    absorbed: dict[str, list[str]] = defaultdict(list)
    for old, into in survivors.items():
        if into:
            absorbed[into].append(old)
    for into, olds in absorbed.items():
        involved = [into, *sorted(olds)] if into in before_members else sorted(olds)
        events.append(
            (
                "merge",
                into,
                {
                    "members": {p: sorted(before_members[p]) for p in involved},
                    "golden": {p: state.golden.get(p, {}) for p in involved},
                },
                {"members": {into: sorted(after_members[into])}, "retired": sorted(olds)},
                "resolve: clusters joined",
            )
        )
    parts_of: dict[str, set[str]] = defaultdict(set)
    for pk, pid in state.members.items():
        if pk in now:
            parts_of[pid].add(now[pk])
    for pid, members in before_members.items():
        parts = parts_of[pid]
        if pid not in survivors and len(parts) > 1:
            events.append(
                (
                    "split",
                    pid,
                    {"members": {pid: sorted(members)}, "golden": {pid: state.golden.get(pid, {})}},
                    {"members": {p: sorted(after_members[p]) for p in sorted(parts)}},
                    "resolve: cluster split",
                )
            )
    return events


@dataclass
class Assignment:
    """What `assign` decided for the mentions at stake (`pks`, sorted)."""

    pks: np.ndarray
    keys: np.ndarray
    ids: list[str]  # each mention's profile id
    retired: set[str]
    golden: dict[str, dict[str, Any]]  # every profile of `ids`
    survivors: dict[str, str | None]  # retired id -> the profile it went into (None: gone)
    events: list[tuple[str, str, dict[str, Any], dict[str, Any], str]]
    changes: DecisionColumns  # decisions to record
    effective: pd.DataFrame  # every decision in effect among the mentions (a, b by id)
    reviews: list[dict[str, Any]]
    clustering: ClusterReport


def assign(
    frame: pd.DataFrame,
    state: Membership,
    decided: pd.DataFrame,
    current: pd.DataFrame,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    dirty: np.ndarray,
    version: str,
    survivorship: Survivorship,
    step: Step = _quiet,
    merge_threshold: float = 1.0,
) -> Assignment:
    """Profiles for the mentions of `frame` (sorted by id, with `modified_at`): `state` is their
    membership before, `decided` this run's decisions (by id), `current` the stored decisions in
    effect among them (by key), `pair_a`/`pair_b` their candidate pairs, `dirty` the mentions whose
    content is new or changed; `merge_threshold`, the decisions' merge threshold (the clustering's
    re-check asks for a match on average, `join_threshold`)."""
    pks = frame["mention_pk"].to_numpy(np.int64)
    keys = frame["mention_key"].to_numpy(object)
    pk_of = dict(zip(keys.tolist(), pks.tolist(), strict=True))
    changes, effective = merge_decisions(decided, current, pd.Series(keys, index=pks), pk_of, version, dirty)
    labels, clustering = cluster(
        cluster_inputs(effective, pair_a, pair_b, len(frame), pks, merge_threshold, keys)
    )
    ids, retired = assign_ids(labels, [state.members.get(pk) for pk in pks.tolist()], state.created)
    frame = frame.assign(profile_id=ids)
    live, dirty_set = set(pks.tolist()), set(dirty.tolist())
    changed = {pid for pk, pid in zip(pks.tolist(), ids, strict=True) if state.members.get(pk) != pid}
    changed |= {pid for pk, pid in state.members.items() if pk not in live or pk in dirty_set}
    changed |= {pid for pid, pk in zip(ids, pks.tolist(), strict=True) if pk in dirty_set}
    redo = frame[frame["profile_id"].isin(changed | (set(ids) - set(state.golden)))]
    golden = {pid: state.golden[pid] for pid in set(ids) if pid in state.golden}
    redone = redo["profile_id"].nunique()
    advance = step("golden records", redone)
    golden.update(golden_records(redo, "profile_id", survivorship))
    advance(redone)
    survivors = survivors_of(retired, state, pks, ids)
    events = membership_events(state, frame, survivors, ids, pks)
    reviews = review_items(changes, dict(zip(keys.tolist(), ids, strict=True)), version)
    return Assignment(
        pks, keys, ids, retired, golden, survivors, events, changes, effective, reviews, clustering
    )


def write_assignment(
    conn: Connection,
    domain: str,
    result: Assignment,
    state: Membership,
    resolved: list[str | None],
    actor: str,
) -> dict[str, int]:
    """Write an assignment in the caller's transaction: memberships that changed (each mention's
    `resolved` mark: the content hash it was resolved as), profiles created, refreshed or retired,
    the decisions that changed, new review items and the merge and split events."""
    assignment = dict(zip(result.pks.tolist(), zip(result.ids, resolved, strict=True), strict=True))
    written = write_profiles(conn, domain, assignment, result.golden, result.survivors, state)
    record_decision_columns(conn, domain, result.changes)
    written["reviews"] = queue_reviews(conn, domain, result.reviews)
    for kind, pid, before, after, reason in result.events:
        record_event(conn, domain, kind, pid, before, after, actor, reason)
    return written


def merges_in_effect(result: Assignment) -> dict[str, int]:
    effective = result.effective
    return dict(Counter(effective.loc[effective["decision"] == "merge", "source"]))


def leave_changed_alone(
    conn: Connection,
    domain: str,
    read_point: int,
    result: Assignment,
    state: Membership,
    resolved: list[str | None],
) -> tuple[Assignment, Membership, list[str | None], int]:
    """A batch assignment without what other writers changed after `read_point` (the change
    sequence the run started from): the profiles they changed, every mention now in them, and
    whatever this run would have joined to those (its clusters, and the profiles those clusters
    drew from, closed over). Those mentions keep what the other writers wrote, and stay marked
    for the next run. Returns (assignment, state, resolved marks, mentions left alone)."""
    changed = set(changed_since(conn, domain, read_point))
    if not changed:
        return result, state, resolved, 0
    pks = result.pks.tolist()
    now = members_of_profiles(conn, domain, changed)
    held = {m for members in now.values() for m in members} | {
        m for m, p in state.members.items() if p in changed
    }
    new_of = dict(zip(pks, result.ids, strict=True))
    by_new: dict[str, set[int]] = defaultdict(set)
    by_old: dict[str, set[int]] = defaultdict(set)
    for m in pks:
        by_new[new_of[m]].add(m)
        if m in state.members:
            by_old[state.members[m]].add(m)
    left = set(held)
    frontier = set(held)
    while frontier:
        grown: set[int] = set()
        for m in frontier:
            if m in new_of:
                grown |= by_new[new_of[m]]
            if m in state.members:
                grown |= by_old[state.members[m]]
        frontier = grown - left
        left |= frontier
    keep = np.array([m not in left for m in pks], bool)
    kept_ids = {i for i, k in zip(result.ids, keep.tolist(), strict=True) if k}
    kept_old = {state.members[m] for m in pks if m not in left and m in state.members}
    keys_left = {k for k, m in zip(result.keys.tolist(), pks, strict=True) if m in left}
    ok = [
        not ({a, b} & keys_left)
        for a, b in zip(result.changes["mention_a"], result.changes["mention_b"], strict=True)
    ]
    trimmed = Assignment(
        pks=result.pks[keep],
        keys=result.keys[keep],
        ids=[i for i, k in zip(result.ids, keep.tolist(), strict=True) if k],
        retired={p for p in result.retired if p in kept_old},
        golden={p: g for p, g in result.golden.items() if p in kept_ids},
        survivors={p: s for p, s in result.survivors.items() if p in kept_old},
        events=[e for e in result.events if _event_ids(e) <= (kept_ids | kept_old)],
        changes={
            c: [v for v, o in zip(values, ok, strict=True) if o] for c, values in result.changes.items()
        },
        effective=result.effective,
        reviews=[r for r in result.reviews if not ({r["mention_a"], r["mention_b"]} & keys_left)],
        clustering=result.clustering,
    )
    kept_state = Membership(
        members={m: p for m, p in state.members.items() if m not in left},
        resolved={m: h for m, h in state.resolved.items() if m not in left},
        created=state.created,
        golden=state.golden,
    )
    marks = [h for h, k in zip(resolved, keep.tolist(), strict=True) if k]
    return trimmed, kept_state, marks, len(left & set(pks))


def _event_ids(event: tuple[str, str, dict[str, Any], dict[str, Any], str]) -> set[str]:
    _, pid, before, after, _ = event
    return {pid, *(before.get("members") or {}), *(after.get("members") or {}), *(after.get("retired") or [])}


def edge_decisions(
    decided: pd.DataFrame,
    current: pd.DataFrame,
    key_of: dict[int, str],
    profile_of: dict[str, str],
    version: str,
    dirty: np.ndarray | None = None,
) -> tuple[DecisionColumns, list[dict[str, Any]]]:
    """This run's decisions on pairs that leave the component being clustered (a new mention and
    a candidate that nothing merges it with), and the withdrawal of a changed mention's stored
    decisions there: what to record, as `merge_decisions` would, and the review items they raise,
    as `review_items` would (`profile_of`: mention key -> profile)."""
    keys = pd.Series(key_of)
    pk_of = {k: pk for pk, k in key_of.items()}
    changes, _ = merge_decisions(decided, current, keys, pk_of, version, dirty)
    return changes, review_items(changes, profile_of, version)
