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
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.blocking import CandidatePairs
from features.comparisons import MentionArrays, booking_contacts_by_mention, compare
from features.comparisons.base import contacts_rehomed, own_contacts_of, own_homes
from features.embedding.similarity import pair_cosines
from features.frame import PERSON_FIELDS, frame_fingerprint, load_interactions, load_mentions
from features.pairs import CandidateTable, load_candidate_table
from features.pool_cache import kept_or_compared, pool_key
from models.bundle import Thresholds
from pipelines.assign import assign, leave_changed_alone, merges_in_effect, write_assignment
from pipelines.block import blocking_identity, blocking_is_current, compute_blocks, nothing_ingested
from pipelines.champion import NO_MODEL, champion, model_identity, rules_only
from pipelines.decide import PairsToDecide, decide, with_imported_scores
from profiles.errors import NotReady
from profiles.resolution.golden import Survivorship
from profiles.resolution.rules import RuleSet, load_rules, made_shared_holders
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import (
    current_decisions,
    get_info,
    load_external_scores,
    set_info,
)
from profiles.store.locks import domain_lock, max_change_seq
from profiles.store.profiles_io import (
    current_membership,
    mention_times,
)
from profiles.store.revisits import clear_revisits, last_queued
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
    # model merges with nothing but the name in common (or only contacts many people write), sent to review
    name_only_to_review: int = 0
    # model merges of two first names on what a family shares (no birth date, loyalty id, document)
    other_first_name_to_review: int = 0
    conflicted_mentions: int = 0  # left as online writers set them while this run computed
    revisits_done: int = 0  # revisit queue rows taken off (`profiles.store.revisits`)
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
    cosine_of = (lambda xa, xb: pair_cosines(*vectors, xa, xb)) if vectors is not None else None
    return with_imported_scores(
        table.a[touch], table.b[touch], table.cosine[touch], external, pk_of, dirty, cosine_of
    )


def _changed_by(
    frame: pd.DataFrame,
    interactions: pd.DataFrame,
    table: CandidateTable,
    current: pd.DataFrame,
    external: pd.DataFrame,
    pk_of: dict[str, int],
    dirty: np.ndarray,
    rules: RuleSet,
) -> np.ndarray:
    """The mentions whose decisions the new or changed ones (`dirty`) changed without touching
    them, decided again so that an incremental run decides as a full one: the holders of an email
    or phone the new mentions made shared (`made_shared_holders`), the travellers on bookings made
    from a contact whose booker's home they changed (`_rehomed_travellers`), and both sides of a decision
    in effect whose pair is no candidate any more (a name block grown past `max_name_block`, say:
    deciding them again withdraws it). Manual decisions stand, and imported scores are decided
    again where they are."""
    out = np.union1d(
        made_shared_holders(frame, dirty, rules.shared_value_max_names),
        _rehomed_travellers(frame, interactions, dirty),
    )
    live = (current["source"].to_numpy(object) != "manual") & (
        current["decision"].to_numpy(object) != "no_match"
    )
    a = np.array([pk_of.get(k, -1) for k in current["mention_a"].to_numpy(object)[live]], np.int64)
    b = np.array([pk_of.get(k, -1) for k in current["mention_b"].to_numpy(object)[live]], np.int64)
    known = (a >= 0) & (b >= 0)
    a, b = np.minimum(a, b)[known], np.maximum(a, b)[known]
    proposed = (table.a.astype(np.int64) << 32) | table.b.astype(np.int64)
    if len(external):
        ea = np.array([pk_of.get(k, -1) for k in external["mention_a"]], np.int64)
        eb = np.array([pk_of.get(k, -1) for k in external["mention_b"]], np.int64)
        proposed = np.concatenate([proposed, (np.minimum(ea, eb) << 32) | np.maximum(eb, ea)])
    gone = ~np.isin((a << 32) | b, proposed)
    return np.union1d(out, np.concatenate([a[gone], b[gone]]))


def _rehomed_travellers(frame: pd.DataFrame, interactions: pd.DataFrame, dirty: np.ndarray) -> np.ndarray:
    """The travellers on bookings made from a contact whose booker's home the `dirty` mentions
    changed (`contacts_rehomed`): their `booked_from_home` is another answer now."""
    booking = booking_contacts_by_mention(interactions)
    if not booking:
        return np.zeros(0, np.int64)
    booked: dict[str, set[int]] = {}
    for pk, contacts in booking.items():
        for c in contacts:
            booked.setdefault(c, set()).add(pk)
    new = frame[frame["mention_pk"].isin(dirty)]
    housed = [home is not None for home in own_homes(new)]
    brought = (
        {c for held in own_contacts_of(new[housed]) for c in held if c in booked} if any(housed) else set()
    )
    if not brought:
        return np.zeros(0, np.int64)
    owned = own_contacts_of(frame)
    holders = frame[[not brought.isdisjoint(held) for held in owned]]
    moved = contacts_rehomed(holders, brought, set(dirty.tolist()))
    return np.array(sorted({pk for c in moved for pk in booked[c]}), np.int64)


def run_resolve(
    store: Store, settings: Settings, full: bool = False, step: Step = _quiet, actor: str = "upt resolve"
) -> ResolveReport:
    report = ResolveReport()
    clock = time.perf_counter()
    rules = load_rules(settings.rules_file)
    survivorship = survivorship_of(settings)
    info_key = f"resolve_model_version:{store.domain}"
    # The state this run starts from: on PostgreSQL read under the domain lock, so that no online
    # write is half done (one that commits later raises the change sequence past this point).
    with store.transaction() as conn:
        domain_lock(conn, store.domain, exclusive=True, wait_seconds=settings.write_wait_seconds)
        read_point = max_change_seq(conn, store.domain)
        revisits_read = last_queued(conn, store.domain)
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
            if len(dirty):
                dirty = np.union1d(
                    dirty, _changed_by(frame, interactions, table, current, external, pk_of, dirty, rules)
                )
        report.mentions, report.dirty_mentions, report.candidate_pairs = len(frame), len(dirty), len(table)

        clock = time.perf_counter()
        work = _work_pairs(table, external, pk_of, dirty, vectors)
        if no_model is not None and len(work.a):
            raise no_model
        advance = step("compare and score", len(work.a))
        cache = settings.candidate_features_path(store.domain)
        features = _compared(frame, interactions, table, work, store.domain, cache, advance)
        outcome = decide(
            features, work, bundle, version, rules, frame, booking=booking_contacts_by_mention(interactions)
        )
        decided = outcome.decisions
        report.rule_hits.update(outcome.rule_hits)
        report.name_only_to_review = outcome.name_only_to_review
        report.other_first_name_to_review = outcome.other_first_name_to_review
        report.pairs_decided = len(decided)
        report.seconds["compare_score_rules"] = round(time.perf_counter() - clock, 2)

        clock = time.perf_counter()
        result = assign(
            frame,
            state,
            decided,
            current,
            table.a,
            table.b,
            dirty,
            version,
            survivorship,
            step,
            merge_threshold=bundle.thresholds.merge,
        )
        report.decisions_changed = len(result.changes["mention_a"])
        report.clustering = vars(result.clustering)
        report.seconds["cluster_golden"] = round(time.perf_counter() - clock, 2)

        if stored is not None:
            clock = time.perf_counter()
            stored.result()  # raises what the write raised
            report.seconds["block_write_wait"] = round(time.perf_counter() - clock, 2)
            report.blocking = {"ran": True, **vars(blocked.report)}
        else:
            report.blocking = {"ran": False, "reason": "the stored candidate pairs are current"}

    clock = time.perf_counter()
    with store.transaction() as conn:
        domain_lock(conn, store.domain, exclusive=True, wait_seconds=settings.write_wait_seconds)
        result, state, resolved, report.conflicted_mentions = leave_changed_alone(
            conn, store.domain, read_point, result, state, list(hashes)
        )
        report.written = write_assignment(conn, store.domain, result, state, resolved, actor)
        report.reviews = report.written.pop("reviews")
        set_info(conn, info_key, model_identity(bundle, version, settings))
        # the mentions online arrivals queued to be resolved again: decided above, as the
        # arrivals are (`_changed_by`)
        report.revisits_done = clear_revisits(conn, store.domain, revisits_read)
        report.merges = merges_in_effect(result)
        report.events = dict(Counter(e[0] for e in result.events))
        report.profiles = len(set(result.ids))
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
    store.refresh_statistics()
    report.seconds["write"] = round(time.perf_counter() - clock, 2)
    return report


def _compared(
    frame: pd.DataFrame,
    interactions: pd.DataFrame,
    table: CandidateTable,
    work: PairsToDecide,
    domain: str,
    cache: Path | None,
    advance: Callable[[int], None],
) -> pd.DataFrame:
    """The comparison vectors of the pairs to decide. When they are all the candidate pairs (a
    full run) they are read from, or kept in, `cache` (`features.pool_cache`), which `upt label`
    and `upt train` share."""
    whole = (
        cache is not None
        and len(work.a) == len(table)
        and np.array_equal(work.a, table.a)
        and np.array_equal(work.b, table.b)
        and np.array_equal(work.cosine, table.cosine, equal_nan=True)
    )
    compared = 0

    def compare_all() -> pd.DataFrame:
        nonlocal compared
        arrays = MentionArrays.build(frame, interactions)
        parts = []
        for start in range(0, len(work.a), 500_000):
            rows = slice(start, start + 500_000)
            parts.append(compare(arrays, work.a[rows], work.b[rows], work.cosine[rows]))
            advance(len(parts[-1]))
            compared += len(parts[-1])
        return pd.concat(parts, ignore_index=True) if parts else compare(arrays, work.a, work.b, work.cosine)

    if cache is None or not whole:
        return compare_all()
    key = pool_key(frame_fingerprint(frame, domain), interactions)
    features = kept_or_compared(cache, key, table.a, table.b, table.blockers, table.cosine, compare_all)
    advance(len(features) - compared)  # the kept ones, read at once
    return features


def _as_table(pairs: CandidatePairs) -> CandidateTable:
    """Pairs just blocked, exactly as `load_candidate_table` reads them back once stored: sorted
    by (a, b), a missing cosine as 0, cosines as float32."""
    a, b = pairs.a.astype(np.int64), pairs.b.astype(np.int64)
    order = np.argsort((a << 32) | b, kind="stable")
    cosine = np.nan_to_num(np.asarray(pairs.cosine, np.float64), nan=0.0).astype(np.float32)
    return CandidateTable(a[order], b[order], pairs.blockers.astype(np.int64)[order], cosine[order])
