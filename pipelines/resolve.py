"""`upt resolve`: rules, model scores and imported scores become decisions; decisions become
profiles with stable ids, golden records and a history of every membership change.

The whole batch in one command: when the stored candidate pairs are not those of the mentions now
stored (new, changed or erased mentions, other blocking settings), blocking runs first, in the same
process (see `pipelines.block`); when they are, as right after `upt block`, it is skipped.

Incremental by default: pairs that touch a new or changed mention (or one whose imported scores
changed) are compared, ruled, scored and decided; every other pair keeps its current decision.
`--full`, or a new champion model, decides every candidate pair again. Manual decisions (review
answers, manual merges and unmerges) are never overridden. Clustering always runs over all current
decisions, so the profiles are the same whichever way a decision came to be. Everything a run
writes is one transaction: a crash leaves the previous state, and the next run redoes the work,
with neither lost nor duplicated decisions.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.blocking import CandidatePairs
from features.comparisons import MentionArrays, compare
from features.embedding.similarity import pair_cosines
from features.frame import PERSON_FIELDS, load_interactions, load_mentions
from features.pairs import CandidateTable, load_candidate_table
from models.bundle import Thresholds
from pipelines.block import blocking_identity, blocking_is_current, compute_blocks, nothing_ingested
from pipelines.champion import NO_MODEL, champion, model_identity, rules_only
from pipelines.decide import APART, PairsToDecide, decide
from profiles.errors import NotReady
from profiles.resolution.clustering import MANUAL_SCORE, ClusterInputs, PairScores, cluster
from profiles.resolution.golden import Survivorship, golden_records
from profiles.resolution.identity import assign_ids
from profiles.resolution.rules import load_rules
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import (
    DecisionColumns,
    current_decisions,
    get_info,
    load_external_scores,
    record_decision_columns,
    record_event,
    set_info,
)
from profiles.store.profiles_io import (
    Membership,
    current_membership,
    mention_times,
    queue_reviews,
    write_profiles,
)
from profiles.store.vectors import load_vectors
from profiles.store.writes import write_audit

Step = Callable[[str, int], Callable[[int], None]]
GOLDEN_FIELDS = PERSON_FIELDS
EDGE_DECISIONS = ("merge",)


def _quiet(_: str, __: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class ResolveReport:
    mode: str = "incremental"
    mode_reason: str = ""
    mentions: int = 0
    blocking: dict[str, Any] = field(default_factory=dict)  # what blocking did first, if it ran
    dirty_mentions: int = 0
    candidate_pairs: int = 0
    pairs_decided: int = 0
    decisions_changed: int = 0
    merges: dict[str, int] = field(default_factory=dict)  # current merge edges by source
    rule_hits: dict[str, int] = field(default_factory=dict)  # this run, by rule
    name_only_to_review: int = 0  # model merges with nothing but the name in common, sent to review
    reviews: int = 0  # new review items
    profiles: int = 0
    events: dict[str, int] = field(default_factory=dict)
    model_version: str = ""
    thresholds: dict[str, float] = field(default_factory=dict)
    rules_version: str = ""
    clustering: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def survivorship_of(settings: Settings) -> Survivorship:
    return Survivorship(GOLDEN_FIELDS, dict(settings.survivorship), tuple(settings.source_priority))


def _work_pairs(
    table: CandidateTable,
    external: pd.DataFrame,
    pk_of: dict[str, int],
    dirty: np.ndarray,
    vectors: tuple[np.ndarray, np.ndarray] | None,
) -> PairsToDecide:
    touch = np.isin(table.a, dirty) | np.isin(table.b, dirty)
    a, b, cosine = table.a[touch], table.b[touch], table.cosine[touch]
    ext_score = np.full(len(a), np.nan)
    ext_scorer = np.full(len(a), "", dtype=object)
    if len(external):
        ea = np.array([pk_of.get(k, -1) for k in external["mention_a"]], np.int64)
        eb = np.array([pk_of.get(k, -1) for k in external["mention_b"]], np.int64)
        known = (ea >= 0) & (eb >= 0) & (ea != eb)
        lo, hi = np.minimum(ea, eb)[known], np.maximum(ea, eb)[known]
        score = external["score"].to_numpy(np.float64)[known]
        scorer = external["scorer"].to_numpy(object)[known]
        mine = np.isin(lo, dirty) | np.isin(hi, dirty)
        lo, hi, score, scorer = lo[mine], hi[mine], score[mine], scorer[mine]
        where = {(x, y): i for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True))}
        extra = []
        for x, y, s, name in zip(lo.tolist(), hi.tolist(), score.tolist(), scorer.tolist(), strict=True):
            i = where.get((x, y))
            if i is None:
                extra.append((x, y, s, name))
            else:
                ext_score[i], ext_scorer[i] = s, name
        if extra and vectors is not None:
            xa = np.array([e[0] for e in extra], np.int64)
            xb = np.array([e[1] for e in extra], np.int64)
            a, b = np.concatenate([a, xa]), np.concatenate([b, xb])
            cosine = np.concatenate([cosine, pair_cosines(*vectors, xa, xb)])
            ext_score = np.concatenate([ext_score, [e[2] for e in extra]])
            ext_scorer = np.concatenate([ext_scorer, np.array([e[3] for e in extra], dtype=object)])
    return PairsToDecide(a, b, cosine, ext_score, ext_scorer)


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


def run_resolve(
    store: Store, settings: Settings, full: bool = False, step: Step = _quiet, actor: str = "upt resolve"
) -> ResolveReport:
    report = ResolveReport()
    clock = time.perf_counter()
    rules = load_rules(settings.rules_file)
    survivorship = survivorship_of(settings)
    info_key = f"resolve_model_version:{store.domain}"
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
        if frame.empty:
            raise NotReady(nothing_ingested(store.domain))
        frame["modified_at"] = frame["mention_pk"].map(mention_times(conn, store.domain)).fillna("")
        interactions = load_interactions(conn, store.domain)
        identity = blocking_identity(frame, interactions, store.domain, settings)
        pairs_current = blocking_is_current(conn, store.domain, identity)
        table = load_candidate_table(conn, store.domain) if pairs_current else None
        state = current_membership(conn, store.domain)
        current = current_decisions(conn, store.domain)
        external = load_external_scores(conn, store.domain)
        last_version = get_info(conn, info_key)
        # only imported scores can bring pairs that blocking did not store with their cosine
        vectors = load_vectors(conn, store.domain, settings.encoder) if len(external) else None
    report.seconds["load"] = round(time.perf_counter() - clock, 2)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upt-block-write") as writer:
        stored: Future[None] | None = None
        if table is None:
            clock = time.perf_counter()
            blocked = compute_blocks(store, settings, step, loaded=(frame, interactions), identity=identity)
            # Storing the pairs is mostly database time: it runs beside comparison and clustering, and
            # is committed before this run's own transaction (a crash in between leaves current pairs
            # and the previous profiles, as a crash after `upt block` would).
            stored = writer.submit(blocked.write)
            table = _as_table(blocked.pairs)
            report.seconds["block"] = round(time.perf_counter() - clock, 2)
        # the model is loaded while the pairs are stored (a missing model is reported after
        # blocking, whose result stands: it is what `upt block` would have stored)
        clock = time.perf_counter()
        try:
            bundle, version = champion(store, settings)
            no_model: NotReady | None = None
        except NotReady as exc:
            # a store whose mentions have no candidate pair needs no model: each is its own
            # profile; the error is raised below if there is anything to score
            bundle, version, no_model = rules_only(Thresholds(1.0, 1.0)), NO_MODEL, exc
        report.model_version, report.rules_version = version, rules.version
        report.thresholds = {"merge": bundle.thresholds.merge, "review": bundle.thresholds.review}
        report.seconds["model"] = round(time.perf_counter() - clock, 2)
        if full:
            report.mode, report.mode_reason = "full", "asked for (--full)"
        elif last_version is None:
            report.mode, report.mode_reason = "full", "first resolve of this domain"
        elif last_version != model_identity(bundle, version, settings):
            report.mode, report.mode_reason = (
                "full",
                f"the model changed (was {last_version}, now version {version})",
            )
        else:
            report.mode_reason = "new or changed mentions only"
        pks = frame["mention_pk"].to_numpy(np.int64)
        keys = frame["mention_key"].to_numpy(object)
        pk_of = dict(zip(keys.tolist(), pks.tolist(), strict=True))
        hashes = frame["content_hash"].tolist()
        if report.mode == "full":
            dirty = pks
        else:
            dirty = pks[[state.resolved.get(pk) != h for pk, h in zip(pks.tolist(), hashes, strict=True)]]
        report.mentions, report.dirty_mentions, report.candidate_pairs = len(frame), len(dirty), len(table)

        clock = time.perf_counter()
        work = _work_pairs(table, external, pk_of, dirty, vectors)
        if no_model is not None and len(work.a):
            raise no_model
        advance = step("compare and score", len(work.a))
        arrays = MentionArrays.build(frame, interactions)
        parts = []
        for start in range(0, len(work.a), 500_000):
            rows = slice(start, start + 500_000)
            parts.append(compare(arrays, work.a[rows], work.b[rows], work.cosine[rows]))
            advance(len(parts[-1]))
        features = (
            pd.concat(parts, ignore_index=True) if parts else compare(arrays, work.a, work.b, work.cosine)
        )
        outcome = decide(features, work, bundle, version, rules, frame)
        decided = outcome.decisions
        report.rule_hits.update(outcome.rule_hits)
        report.name_only_to_review = outcome.name_only_to_review
        report.pairs_decided = len(decided)
        report.seconds["compare_score_rules"] = round(time.perf_counter() - clock, 2)

        clock = time.perf_counter()
        changes, effective = _merge_decisions(decided, current, pd.Series(keys, index=pks), pk_of, version)
        report.decisions_changed = len(changes["mention_a"])
        labels, clustering = cluster(_cluster_inputs(effective, table, len(frame), pks))
        report.clustering = vars(clustering)
        ids, retired = assign_ids(labels, [state.members.get(pk) for pk in pks.tolist()], state.created)
        report.seconds["cluster"] = round(time.perf_counter() - clock, 2)

        clock = time.perf_counter()
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
        survivors = _survivors(retired, state, pks, ids)
        events = _events(state, frame, survivors, ids, pks)
        report.seconds["golden"] = round(time.perf_counter() - clock, 2)

        if stored is not None:
            clock = time.perf_counter()
            stored.result()  # raises what the write raised
            report.seconds["block_write_wait"] = round(time.perf_counter() - clock, 2)
            report.blocking = {"ran": True, **vars(blocked.report)}
        else:
            report.blocking = {"ran": False, "reason": "the stored candidate pairs are current"}

    clock = time.perf_counter()
    reviews = review_items(changes, dict(zip(keys.tolist(), ids, strict=True)), version)
    assignment = dict(zip(pks.tolist(), zip(ids, hashes, strict=True), strict=True))
    with store.transaction() as conn:
        report.written = write_profiles(conn, store.domain, assignment, golden, survivors, state)
        record_decision_columns(conn, store.domain, changes)
        report.reviews = queue_reviews(conn, store.domain, reviews)
        for kind, pid, before, after, reason in events:
            record_event(conn, store.domain, kind, pid, before, after, actor, reason)
        set_info(conn, info_key, model_identity(bundle, version, settings))
        report.merges = dict(Counter(effective.loc[effective["decision"] == "merge", "source"]))
        report.events = dict(Counter(e[0] for e in events))
        report.profiles = len(set(ids))
        write_audit(
            conn,
            store.domain,
            actor,
            "resolve",
            {
                "mode": report.mode,
                "model_version": version,
                "rules_version": rules.version,
                "thresholds": report.thresholds,
                "pairs_decided": report.pairs_decided,
                "decisions_changed": report.decisions_changed,
                "rule_hits": report.rule_hits,
                "profiles": report.profiles,
                "events": report.events,
            },
        )
    report.seconds["write"] = round(time.perf_counter() - clock, 2)
    return report


def _as_table(pairs: CandidatePairs) -> CandidateTable:
    """Pairs just blocked, exactly as `load_candidate_table` reads them back once stored: sorted
    by (a, b), a missing cosine as 0, cosines as float32."""
    a, b = pairs.a.astype(np.int64), pairs.b.astype(np.int64)
    order = np.argsort((a << 32) | b, kind="stable")
    cosine = np.nan_to_num(np.asarray(pairs.cosine, np.float64), nan=0.0).astype(np.float32)
    return CandidateTable(a[order], b[order], pairs.blockers.astype(np.int64)[order], cosine[order])


def _merge_decisions(
    decided: pd.DataFrame, current: pd.DataFrame, key_of: pd.Series, pk_of: dict[str, int], version: str
) -> tuple[DecisionColumns, pd.DataFrame]:
    """(decisions to record, by column: those that differ from the pair's current one; every pair's
    decision in effect now, by mention id). Manual decisions stand until a person changes them.

    Pairs are matched by mention ids packed into one integer (a stored decision names its mentions
    by key; keys of mentions no longer stored match nothing): a join on two string columns took
    seconds at a million pairs."""
    a, b = decided["a"].to_numpy(np.int64), decided["b"].to_numpy(np.int64)
    ca = np.array([pk_of.get(k, -1) for k in current["mention_a"].tolist()], np.int64)
    cb = np.array([pk_of.get(k, -1) for k in current["mention_b"].tolist()], np.int64)
    live = (ca >= 0) & (cb >= 0)
    stored_code = np.where(live, (ca << 32) | np.maximum(cb, 0), -1)
    decided_code = (a << 32) | b
    at = pd.Index(stored_code[live]).get_indexer(decided_code)  # latest decision: one row per pair
    found = at >= 0
    rows = np.flatnonzero(live)[at[found]]
    old_decision = np.full(len(decided), None, dtype=object)
    old_source = np.full(len(decided), None, dtype=object)
    old_decision[found] = current["decision"].to_numpy(object)[rows]
    old_source[found] = current["source"].to_numpy(object)[rows]
    decision, source = decided["decision"].to_numpy(object), decided["source"].to_numpy(object)
    manual = old_source == "manual"
    same = found & (old_decision == decision) & (old_source == source)
    record = ~manual & ~same & ~(~found & (decision == "no_match"))
    rec = decided.loc[record]
    columns: DecisionColumns = {
        "mention_a": key_of.loc[rec["a"]].tolist(),
        "mention_b": key_of.loc[rec["b"]].tolist(),
        "decision": rec["decision"].tolist(),
        "source": rec["source"].tolist(),
        "score": rec["score"].to_numpy(np.float64).tolist(),
        "rule": rec["rule"].tolist(),
        "actor": rec["actor"].tolist(),
        "model_version": [None if s == "external" else version for s in rec["source"].tolist()],
        "threshold": [None if np.isnan(t) else t for t in rec["threshold"].to_numpy(np.float64).tolist()],
    }
    fresh = decided.loc[~manual, ["a", "b", "decision", "source", "score"]]
    # stored decisions still in effect: pairs not decided in this run, and every manual one
    keep = live & (~np.isin(stored_code, decided_code) | (current["source"] == "manual").to_numpy())
    kept = pd.DataFrame(
        {
            "a": ca[keep],
            "b": cb[keep],
            "decision": current["decision"].to_numpy(object)[keep],
            "source": current["source"].fillna("model").to_numpy(object)[keep],
            "score": current["score"].fillna(0.0).to_numpy(np.float64)[keep],
        }
    )
    return columns, pd.concat([fresh, kept], ignore_index=True)


def _cluster_inputs(effective: pd.DataFrame, table: CandidateTable, n: int, pks: np.ndarray) -> ClusterInputs:
    node = pd.Index(pks)
    a = node.get_indexer(effective["a"].to_numpy(np.int64))
    b = node.get_indexer(effective["b"].to_numpy(np.int64))
    if len(a) and min(a.min(), b.min()) < 0:
        raise RuntimeError("a decision names a mention that is not stored")  # a bug, never data
    decision, source = effective["decision"].to_numpy(object), effective["source"].to_numpy(object)
    score = effective["score"].to_numpy(np.float64)
    manual = source == "manual"
    weight = np.where(manual, MANUAL_SCORE, score)
    merge = decision == "merge"
    apart = (decision == APART) | (manual & (decision == "no_match"))
    # The re-check compares two groups by the scores between them: the score of each merge,
    # review or cannot-link decision, 0 for candidate pairs judged no match (whose scores are not
    # kept), so that an incremental and a full run cluster the same decisions the same way.
    ta, tb = node.get_indexer(table.a), node.get_indexer(table.b)
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
    )


def _survivors(
    retired: set[str], state: Membership, pks: np.ndarray, ids: list[str]
) -> dict[str, str | None]:
    now = dict(zip(pks.tolist(), ids, strict=True))
    holders: dict[str, Counter[str]] = defaultdict(Counter)
    for pk, pid in state.members.items():
        if pid in retired and pk in now:
            holders[pid][now[pk]] += 1
    return {pid: (holders[pid].most_common(1)[0][0] if holders[pid] else None) for pid in retired}


def _events(
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
