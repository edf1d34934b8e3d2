"""The online core: one incoming record resolved against the store in milliseconds, with the
decisions the batch run would make. The HTTP API, the stream consumer and rescoring use it.

`OnlineResolver` is one process's resolver for a store and domain: it keeps the encoder, the
candidate index (`LiveIndex`), the champion (`ChampionCache`) and the rules loaded between
calls. For each mention of an object it:
1. finds its candidates by index probes (`pipelines.candidates.lookup`: the pairs batch blocking
   proposes for it);
2. compares and decides them with the batch's own `decide` (rules, imported scores, the model
   and its thresholds, the name-only guard, cannot-links; which contacts are shared is asked of
   the store for the whole domain);
3. clusters the connected component the mention touches (every mention linked to it by merge
   decisions or a shared profile) with the batch's own `assign`: merge into a profile, create
   one, join two, or queue a review; stable ids, golden records, events and decisions as the
   batch records them; and writes only that component.
`match` does 1 and 2 for a person that is not stored, and writes nothing.

A mention resolved online is marked (`ONLINE` after its content hash): the next batch run
decides its pairs again, with everything blocking finds for it by then (a later mention that
names it among its own nearest, say).

Concurrency: on SQLite a resolve is one writing transaction, which holds the single write lock
from its start; on PostgreSQL it takes the domain lock shared, locks the profiles it changes, and
starts again when one of them changed after it was read (`Conflict`): at least `ATTEMPTS` times
and for as long as `write_wait_seconds`, after a short random pause that grows with each try, so
that writers that collided do not collide again in step. On SQLite the write-ahead log is
checkpointed by a thread (`profiles.store.checkpoint.WalCheckpointer`), not by whichever
request's commit grew it past a thousand pages.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from features.blocking import Blocker
from features.comparisons import MentionArrays, booking_contacts_by_mention, compare
from features.comparisons.base import (
    MOST_CONTACT_HOLDERS,
    ContactHomes,
    address_key,
    bookings_compared,
    contacts_rehomed,
    own_contacts_of,
)
from features.embedding.similarity import pair_cosines
from features.frame import (
    frame_from_normalized,
    interaction_rows,
    interactions_frame,
    load_interactions,
    mention_rows_by_ids,
)
from features.records import object_record
from models.bundle import Bundle, Thresholds
from pipelines.assign import Assignment, assign, edge_decisions, write_assignment
from pipelines.candidates import UNSTORED, Found, lookup
from pipelines.champion import Champion, ChampionCache, rules_only
from pipelines.decide import PairsToDecide, decide, with_imported_scores
from pipelines.homes import contact_holders, contact_homes_in_store
from pipelines.ingest import write_records
from pipelines.keys import ensure_keys
from pipelines.live_index import LiveIndex
from pipelines.resolve import survivorship_of
from profiles.contract import ContractObject, Person
from profiles.errors import Conflict, NotReady
from profiles.resolution.rules import load_rules
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.checkpoint import WalCheckpointer
from profiles.store.decisions import (
    decision_rows_touching,
    latest_decisions,
    latest_rows,
    load_external_scores,
    record_decision_columns,
)
from profiles.store.keys import probe_keys
from profiles.store.locks import domain_lock, lock_mentions, lock_profiles
from profiles.store.profiles_io import (
    Membership,
    members_of_profiles,
    membership_of,
    mention_times,
    queue_reviews,
)
from profiles.store.reads import (
    holders_of,
    mention_ids,
    mention_keys_of,
    shared_contact_values,
)
from profiles.store.records import content_hash
from profiles.store.revisits import pending_revisits, queue_revisits, queued_ids, take_off
from profiles.store.vectors import (
    add_pairs,
    drop_pairs_of_block,
    pairs_among,
    save_embeddings,
    vectors_by_ids,
    withdraw_blockers,
)

ONLINE = ":online"
ATTEMPTS = 5
MAX_PAUSE_SECONDS = 0.25  # the longest pause between two tries of one resolve
MAX_COMPONENT = 20_000  # a component this large is a data problem (a generic key let through)


@dataclass
class MentionOutcome:
    """What resolving one mention did."""

    mention_key: str
    profile_id: str | None
    action: str  # new_profile | joined | kept | merged_profiles | unchanged | not_matchable
    decided_by: str = ""  # the rule, "model p=0.973", "external:NAME p=..." or "" (nothing merged)
    score: float | None = None
    review_items: int = 0  # new review items about this mention
    merged: list[str] = field(default_factory=list)  # profile ids it joined into one
    candidates: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # the mentions decided again because this one made a contact of theirs shared, a blocking
    # key of theirs too large or their booker's home a second one (`OnlineResolver.resolve_mention`)
    revisited: list[str] = field(default_factory=list)
    # those left queued instead (`revisit=False`): `OnlineResolver.revisit_pending` or the next
    # `upt resolve` decides them
    queued: list[str] = field(default_factory=list)


@dataclass
class ObjectOutcome:
    key: tuple[str, str, str]
    status: str  # inserted | replaced | unchanged
    mentions: list[MentionOutcome] = field(default_factory=list)


@dataclass
class Candidate:
    """One stored mention scored against a person, with why."""

    mention_key: str
    profile_id: str | None
    probability: float
    decision: str
    rule: str | None
    blockers: list[str]
    explanation: dict[str, float]  # the features that moved the score most (log-odds)


@dataclass
class MatchResult:
    decision: str  # merge | review | no_match: what the thresholds would do with the person
    profile_id: str | None  # the profile it would join (merge) or be asked about (review)
    candidates: list[Candidate]
    model_version: str
    thresholds: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def _partners(a: np.ndarray, b: np.ndarray, pk: int) -> np.ndarray:
    return np.where(a == pk, b, a)


class _Reads:
    """The mention rows and interactions one resolve reads, each read from the store once: it
    asks for the mention, then for it and its candidates, then for its component (one
    transaction, nothing written in between)."""

    def __init__(self, conn: Connection, domain: str) -> None:
        self.conn, self.domain = conn, domain
        self._mentions: dict[int, tuple[Any, ...] | None] = {}
        self._interactions: dict[int, list[tuple[Any, ...]]] = {}

    def mentions(self, pks: list[int] | set[int]) -> pd.DataFrame:
        """`load_mentions_by_ids` of these mentions."""
        wanted = sorted({int(pk) for pk in pks})
        missing = [pk for pk in wanted if pk not in self._mentions]
        if missing:
            self._mentions.update(dict.fromkeys(missing))
            self._mentions.update((r[0], r) for r in mention_rows_by_ids(self.conn, self.domain, missing))
        return frame_from_normalized([r for pk in wanted if (r := self._mentions[pk]) is not None])

    def interactions(self, pks: list[int] | set[int]) -> pd.DataFrame:
        """`load_interactions` of these mentions."""
        wanted = {int(pk) for pk in pks}
        missing = wanted - set(self._interactions)
        if missing:
            for pk in missing:
                self._interactions[pk] = []
            for row in interaction_rows(self.conn, self.domain, missing):
                self._interactions[row[1]].append(row)
        rows = [r for pk in wanted for r in self._interactions[pk]]
        return interactions_frame(sorted(rows, key=lambda r: r[0]))


class OnlineResolver:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        live: LiveIndex | None = None,
        champion: ChampionCache | None = None,
        actor: str = "online",
    ) -> None:
        self.store, self.settings, self.actor = store, settings, actor
        ensure_keys(store, settings)
        self.live = live or LiveIndex(store, settings)
        self.champion = champion or ChampionCache(store, settings, background=True)
        self.rules = load_rules(settings.rules_file)
        self.survivorship = survivorship_of(settings)
        # SQLite: the log is checkpointed by a thread, not by the commit of a request
        self.checkpointer = WalCheckpointer.for_store(store)

    # -- what decides -------------------------------------------------------------------------

    def _champion(self) -> Champion | NotReady:
        """The champion, or why there is none (raised only when there is a pair to score)."""
        try:
            return self.champion.get()
        except NotReady as exc:
            return exc

    def _scored(
        self,
        conn: Connection,
        frame: pd.DataFrame,
        interactions: pd.DataFrame,
        pairs: PairsToDecide,
        loaded: Champion | NotReady,
        seconds: dict[str, float],
        known: ContactHomes,
    ) -> tuple[pd.DataFrame, pd.DataFrame, Champion]:
        """(features, decisions, champion) of one mention's pairs; the time of the comparison
        vectors and of the decisions added to `seconds`; `known`, where the contacts the lookup
        read live (`Found.contact_homes`)."""
        if isinstance(loaded, NotReady):
            if len(pairs):
                raise loaded
            # nothing to score: the mention is its own profile, no model needed (as in batch)
            loaded = Champion(rules_only_bundle(), "none", "none")
        champion = loaded
        clock = time.perf_counter()
        compared = bookings_compared(frame, interactions, pairs.a, pairs.b)
        homes = contact_homes_in_store(conn, self.store.domain, frame, compared, known)
        arrays = MentionArrays.build(frame, interactions, homes)
        features = compare(arrays, pairs.a, pairs.b, pairs.cosine)
        seconds["compare"] = time.perf_counter() - clock
        clock = time.perf_counter()
        domain = self.store.domain

        def shared(column: str, values: set[str], most: int) -> set[str]:
            return shared_contact_values(conn, domain, column, values, most)

        booking = booking_contacts_by_mention(interactions)
        outcome = decide(
            features, pairs, champion.bundle, champion.version, self.rules, frame, shared, booking
        )
        seconds["decide"] = time.perf_counter() - clock
        return features, outcome.decisions, champion

    # -- match: score a person, write nothing ---------------------------------------------------

    def match(self, person: Person, source: str = "match", top: int = 10) -> MatchResult:
        """The stored mentions a person would be matched with, best first, with probability, rule
        hits and the features behind each score, and the decision the thresholds would take."""
        from features.records import mention_record

        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        record = mention_record(
            f"{source}/match/person#person", "person", person, self.settings.region_for_source(source)
        )
        own_row = _row_of_record(UNSTORED, record.key, source, record.normalized)
        one = frame_from_normalized([own_row])
        no_travel = _no_interactions()
        text, encoded = self.live.encode(one)
        seconds["normalize"] = time.perf_counter() - clock
        with self.store.reading() as conn:
            found = lookup(
                conn, self.store.domain, self.settings, one, no_travel, self.live, text, encoded, pushes=False
            )
            seconds.update({f"lookup_{k}": v for k, v in found.seconds.items()})
            clock = time.perf_counter()
            others = _partners(found.pairs.a, found.pairs.b, UNSTORED)
            stored = mention_rows_by_ids(conn, self.store.domain, others.tolist())
            frame = frame_from_normalized([*stored, own_row])
            interactions = load_interactions(conn, self.store.domain, mention_pks=others.tolist())
            seconds["load"] = time.perf_counter() - clock
            pairs = PairsToDecide.of(found.pairs.a, found.pairs.b, found.pairs.cosine)
            features, decided, champion = self._scored(
                conn, frame, interactions, pairs, self._champion(), seconds, found.contact_homes
            )
            clock = time.perf_counter()
            membership, _ = membership_of(conn, self.store.domain, others.tolist(), profiles_too=False)
        keys = dict(zip(frame["mention_pk"].tolist(), frame["mention_key"].tolist(), strict=True))
        candidates = []
        score, decision, rule = (decided[c].tolist() for c in ("score", "decision", "rule"))
        best = np.argsort(-np.asarray(score, np.float64), kind="stable")[:top]
        # only the candidates answered are explained (a crowd can propose a hundred)
        explained = _explain(champion, features.iloc[best])
        for n, i in enumerate(best.tolist()):
            other = int(others[i]) if len(others) else 0
            candidates.append(
                Candidate(
                    mention_key=keys.get(other, ""),
                    profile_id=membership.members.get(other),
                    probability=round(float(score[i]), 6),
                    decision=str(decision[i]),
                    rule=rule[i],
                    blockers=_blocker_names(int(found.pairs.blockers[i])),
                    explanation=explained[n] if explained else {},
                )
            )
        decision, profile = "no_match", None
        for wanted in ("merge", "review"):
            hit = next((c for c in candidates if c.decision == wanted), None)
            if hit is not None:
                decision, profile = wanted, hit.profile_id
                break
        seconds["explain"] = time.perf_counter() - clock
        thresholds = {"merge": champion.bundle.thresholds.merge, "review": champion.bundle.thresholds.review}
        return MatchResult(decision, profile, candidates, champion.version, thresholds, seconds)

    # -- resolve: ingest objects and resolve their mentions ----------------------------------------

    def resolve_objects(self, objects: list[ContractObject], revisit: bool = True) -> list[ObjectOutcome]:
        """Store each object (idempotent: an equal or older `modified_at` changes nothing) and
        resolve its matchable mentions not yet resolved as they are now. The mentions whose
        decisions an object changed without touching them (see `resolve_mention`) are queued in
        the same transaction; with `revisit` they are resolved again before the next object,
        else they wait for `revisit_pending` or the next `upt resolve` (a caller that answers
        first: an object then costs what its own mentions cost)."""
        outcomes = []
        for obj in objects:
            record = object_record(obj, self.settings.region_for_source(obj.source))
            with self.store.transaction() as conn:
                written = write_records(conn, self.store.domain, [record], [])
                status = "inserted" if written.inserted else "replaced" if written.replaced else "unchanged"
                ids = mention_ids(conn, self.store.domain, [m.key for m in record.mentions])
            outcome = ObjectOutcome(obj.key, status)
            arriving = set(ids.values())
            revisits = []
            for mention in record.mentions:
                pk = ids.get(mention.key)
                if pk is None or not mention.matchable:
                    outcome.mentions.append(MentionOutcome(mention.key, None, "not_matchable"))
                    continue
                resolved, others = self._resolve_with_retries(pk, False, arriving)
                outcome.mentions.append(resolved)
                revisits.append((resolved, others))
            if revisit:
                self._revisit(revisits, arriving)  # once the whole object is in
            else:
                self._note_queued(revisits, arriving)
            outcomes.append(outcome)
        return outcomes

    def resolve_mention(self, pk: int, again: bool = False, revisit: bool = True) -> MentionOutcome:
        """Resolve one stored mention (again, if its content changed since it was resolved, or
        when `again`). When its arrival changes what the batch would decide for others, those
        others are resolved again, each in its own transaction, as the batch over the whole
        domain would decide them: the holders of an email or phone it made shared (written for
        more people than the rules allow: the merges that rested on the value as a personal one),
        the members of a blocking key it made too large (a name held by more mentions than
        `max_name_block`: the batch proposes none of their pairs, so their merges by it go), and
        the travellers merged as booked from a home that it made a second one of its booker's
        (`_rehomed`). They are queued in the mention's own transaction and, with `revisit`,
        resolved again right after it; else they wait (`resolve_objects`)."""
        outcome, others = self._resolve_with_retries(pk, again, {pk})
        if revisit:
            self._revisit([(outcome, others)], {pk})
        else:
            self._note_queued([(outcome, others)], {pk})
        return outcome

    def revisit_pending(self, limit: int | None = None) -> list[MentionOutcome]:
        """Resolve again the mentions waiting in the revisit queue (the longest waiting first, at
        most `limit`), each in its own transaction, which takes it off the queue: the work that
        `resolve_objects(..., revisit=False)` left, for a worker beside the callers."""
        with self.store.reading() as conn:
            waiting = pending_revisits(conn, self.store.domain, limit)
        return [self._resolve_with_retries(pk, True, {pk})[0] for pk in waiting]

    def _revisit(self, revisits: list[tuple[MentionOutcome, list[int]]], arriving: set[int]) -> None:
        """Resolve again, once each, the mentions the arriving ones changed the decisions of."""
        done = set(arriving)
        for outcome, others in revisits:
            for other in others:
                if other not in done:
                    done.add(other)
                    outcome.revisited.append(self._resolve_with_retries(other, True, {other})[0].mention_key)

    def _note_queued(self, revisits: list[tuple[MentionOutcome, list[int]]], arriving: set[int]) -> None:
        """List in each outcome the mentions it left queued."""
        wanted = {pk for _, others in revisits for pk in others} - arriving
        if not wanted:
            return
        with self.store.reading() as conn:
            keys = mention_keys_of(conn, self.store.domain, sorted(wanted))
        for outcome, others in revisits:
            outcome.queued = [keys[pk] for pk in others if pk in keys and pk not in arriving]

    def _resolve_with_retries(
        self, pk: int, again: bool, arriving: set[int]
    ) -> tuple[MentionOutcome, list[int]]:
        loaded = self._champion()  # before the transaction: a first load takes a while
        deadline = time.monotonic() + self.settings.write_wait_seconds
        tries = 0
        while True:
            try:
                with self.store.transaction() as conn:
                    domain_lock(
                        conn,
                        self.store.domain,
                        exclusive=False,
                        wait_seconds=self.settings.write_wait_seconds,
                    )
                    # what waited for this mention, as this transaction sees it (a resolve
                    # again takes it off; one that waited on an arrival not yet seen stays)
                    waiting = queued_ids(conn, self.store.domain, pk) if again else []
                    outcome, vector, revisit = self._resolve_in(conn, pk, loaded, again, arriving)
                    queue_revisits(conn, self.store.domain, revisit)
                    take_off(conn, waiting)
                if vector is not None:
                    self.live.add(pk, vector)
                return outcome, revisit
            except (Conflict, IntegrityError):  # another writer got there first: read again
                tries += 1
                if tries >= ATTEMPTS and time.monotonic() >= deadline:
                    raise Conflict(
                        f"mention {pk}: its profiles kept changing under other writers for "
                        f"{self.settings.write_wait_seconds:g} s ({tries} tries); try again"
                    ) from None
                time.sleep(random.uniform(0, min(MAX_PAUSE_SECONDS, 0.01 * 2**tries)))

    def _resolve_in(
        self,
        conn: Connection,
        pk: int,
        loaded: Champion | NotReady,
        again: bool = False,
        arriving: set[int] | None = None,
    ) -> tuple[MentionOutcome, np.ndarray | None, list[int]]:
        """What resolving the mention did, its vector (None when nothing was resolved) and the
        mentions to resolve again after it (`_newly_shared`, `_made_generic`, `_rehomed`); `arriving`, the
        mentions that arrived with it (one object's), which were not there before."""
        arriving = arriving if arriving is not None else {pk}
        domain = self.store.domain
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        reads = _Reads(conn, domain)
        mine = reads.mentions([pk])
        if mine.empty:
            key = mention_keys_of(conn, domain, [pk]).get(pk, "")
            return MentionOutcome(key, None, "not_matchable"), None, []
        key, own_hash = str(mine["mention_key"].iloc[0]), str(mine["content_hash"].iloc[0])
        before, _ = membership_of(conn, domain, [pk], profiles_too=False)
        if (
            not again
            and before.members.get(pk)
            and str(before.resolved.get(pk) or "").split(":")[0] == own_hash
        ):
            return MentionOutcome(key, before.members[pk], "unchanged"), None, []
        travel = reads.interactions([pk])
        text, vector = self.live.encode(mine)
        seconds["load"] = time.perf_counter() - clock
        found = lookup(conn, domain, self.settings, mine, travel, self.live, text, vector, arriving)
        seconds.update({f"lookup_{k}": v for k, v in found.seconds.items()})

        clock = time.perf_counter()
        pairs = self._with_imported_scores(conn, pk, key, vector, found)
        others = _partners(pairs.a, pairs.b, pk)
        frame = reads.mentions([pk, *others.tolist()])
        interactions = reads.interactions([pk, *others.tolist()])
        seconds["load"] += time.perf_counter() - clock
        _, decided, champion = self._scored(
            conn, frame, interactions, pairs, loaded, seconds, found.contact_homes
        )

        clock = time.perf_counter()
        component, touching = self._component(conn, pk, key, decided, frame)
        comp = sorted(component)
        comp_frame = reads.mentions(comp)
        comp_frame["modified_at"] = comp_frame["mention_pk"].map(mention_times(conn, domain, comp)).fillna("")
        state, seqs = membership_of(conn, domain, comp)
        keys_of = dict(
            zip(comp_frame["mention_pk"].tolist(), comp_frame["mention_key"].tolist(), strict=True)
        )
        inside = set(keys_of.values())
        current = latest_decisions({i: r for i, r in touching.items() if r[0] in inside or r[1] in inside})
        within = (current["mention_a"].isin(inside) & current["mention_b"].isin(inside)).to_numpy(bool)
        ours = (decided["a"].isin(component) & decided["b"].isin(component)).to_numpy(bool)
        stored_a, stored_b = pairs_among(conn, domain, comp)
        pair_a = np.concatenate([stored_a, found.pairs.a])
        pair_b = np.concatenate([stored_b, found.pairs.b])
        result = assign(
            comp_frame,
            state,
            decided[ours],
            current[within],
            pair_a,
            pair_b,
            np.array([pk]),
            champion.version,
            self.survivorship,
            merge_threshold=champion.bundle.thresholds.merge,
        )
        # the candidates nothing merges it with stay where they are: their decisions are recorded
        # and their review items queued, as the batch would
        edge_keys = dict(zip(frame["mention_pk"].tolist(), frame["mention_key"].tolist(), strict=True))
        # its stored decisions with mentions outside, those with what it no longer is among them
        # (only its own: the other members' decisions with mentions outside stand as they are,
        # and reading where their partners live took most of a large component's `assign`)
        own = (current["mention_a"] == key) | (current["mention_b"] == key)
        outside = current[~within & own.to_numpy(bool)]
        unknown = (set(outside["mention_a"]) | set(outside["mention_b"])) - set(edge_keys.values())
        edge_keys.update({pk_: k for k, pk_ in mention_ids(conn, domain, unknown).items()})
        partners, _ = membership_of(conn, domain, edge_keys, profiles_too=False)
        profile_of = {edge_keys[m]: p for m, p in partners.members.items()}
        profile_of.update(dict(zip(result.keys.tolist(), result.ids, strict=True)))
        profile_of = {k: profile_of.get(k, f"__none__{k}") for k in edge_keys.values()}
        edge_changes, edge_reviews = edge_decisions(
            decided[~ours], outside, edge_keys, profile_of, champion.version, np.array([pk])
        )
        seconds["assign"] = time.perf_counter() - clock

        clock = time.perf_counter()
        # another writer may have changed these mentions or profiles since they were read: then
        # start again (locks in a fixed order: mentions, then profiles, each by id)
        # (SQLite: this transaction has held the one write lock since it began; nothing changed)
        if conn.dialect.name != "sqlite":
            lock_mentions(conn, domain, comp)
            now, _ = membership_of(conn, domain, comp, profiles_too=False)
            if (
                lock_profiles(conn, domain, seqs) != seqs
                or now.members != state.members
                or now.resolved != state.resolved
            ):
                raise Conflict("the component changed while it was read")
        resolved = [f"{own_hash}{ONLINE}" if m == pk else state.resolved.get(m) for m in result.pks.tolist()]
        write_assignment(conn, domain, result, state, resolved, self.actor)
        record_decision_columns(conn, domain, edge_changes)
        queue_reviews(conn, domain, edge_reviews)
        result.reviews += edge_reviews
        had, _ = vectors_by_ids(conn, domain, self.live.encoder.name, [pk])
        save_embeddings(
            conn,
            domain,
            self.live.encoder.name,
            np.array([pk]),
            [own_hash],
            vector[None, :],
            set(had.tolist()),
        )
        add_pairs(conn, domain, found.pairs.a, found.pairs.b, found.pairs.blockers, found.pairs.cosine)
        seconds["write"] = time.perf_counter() - clock
        revisit: list[int] = []
        if not again:
            clock = time.perf_counter()
            made = self._newly_shared(conn, pk, mine, arriving) | self._made_generic(conn, pk, found)
            made |= self._rehomed(conn, reads, mine, arriving) | self._pushed_out(conn, found)
            revisit = sorted(made - arriving)
            seconds["others"] = time.perf_counter() - clock
        outcome = _outcome(key, pk, before, state, result, decided, len(found.pairs), seconds)
        return outcome, vector, revisit

    def _rehomed(self, conn: Connection, reads: _Reads, mine: pd.DataFrame, arriving: set[int]) -> set[int]:
        """The travellers on bookings made from a contact of this mention that this mention
        unlocated (`contacts_rehomed`: a second address written for the contact), that a merge
        joins to another mention: a merge booked from home may have rested on it. A first
        address (a booker's home now known) may link travellers to the people living there;
        that is left to the next `upt resolve` (which decides them again, as it decides every
        mention resolved online): on 100,000 stored travel mentions one arriving object in
        eight had such travellers, and deciding them at once raised the p99 of resolving an
        object by two thirds (BENCHMARKS.md). A mention without an address moves no one."""
        if address_key(mine["street"].iloc[0], mine["postal_code"].iloc[0]) is None:
            return set()
        contacts = set(own_contacts_of(mine)[0])
        if not contacts:
            return set()
        domain, most = self.store.domain, MOST_CONTACT_HOLDERS + 1
        travel = probe_keys(conn, domain, [(int(Blocker.TRAVEL), c) for c in sorted(contacts)], most)
        # a contact on more bookings than a block may hold is a desk's: its travellers are left
        # to the next `upt resolve` (one request does not decide hundreds of mentions again)
        booked = {
            c: set(ids) - arriving for (_, c), ids in travel.items() if len(ids) <= self.settings.max_block
        }
        booked = {c: ids for c, ids in booked.items() if ids}
        if not booked:
            return set()
        held = contact_holders(conn, domain, set(booked))
        # a contact on more mentions than the cap locates nobody, before and after (`located`):
        # its holders are not read, as in `contact_homes_in_store`
        booked = {c: ids for c, ids in booked.items() if len(held[c]) <= MOST_CONTACT_HOLDERS}
        if not booked:
            return set()
        holders = {pk for c in booked for pk in held[c]}
        moved = contacts_rehomed(reads.mentions(holders | arriving), set(booked), arriving)
        return self._merged(conn, {pk for c, first in moved.items() if not first for pk in booked[c]})

    def _made_generic(self, conn: Connection, pk: int, found: Found) -> set[int]:
        """The members of the blocks this mention made too large that a merge in effect joined
        by a pair only such a block proposed: those pairs go (the batch proposes none of them,
        and a pair left behind would count as a "no match" between two groups when clustering
        checks a join), and the members they merged are decided again (their lookups propose
        what something else still does). A block of a common name holds dozens of mentions and
        its pairs are mostly sent to review (a name is no identity): only the merged are read."""
        dropped: set[tuple[int, int]] = set()
        for blocker, others in found.made_generic:
            dropped |= drop_pairs_of_block(conn, self.store.domain, blocker, [pk, *others])
        return self._merged(conn, {m for pair in dropped for m in pair}, dropped)

    def _pushed_out(self, conn: Connection, found: Found) -> set[int]:
        """The ends of the pairs this arrival took out of the batch's (a neighbour list it entered
        dropped its last member; `Found.pushed_out`) that a merge in effect joined by such a pair:
        the pairs go, and those ends are decided again."""
        dropped = withdraw_blockers(conn, found.pushed_out)
        return self._merged(conn, {m for pair in dropped for m in pair}, dropped)

    def _merged(self, conn: Connection, pks: set[int], pairs: set[tuple[int, int]] | None = None) -> set[int]:
        """Those of `pks` that a merge in effect by a rule, a model or an imported score (a
        person's word stands) joins to another mention (by one of `pairs`, by id, where given):
        what a changed fact about them can take back."""
        if not pks:
            return set()
        keys = mention_keys_of(conn, self.store.domain, pks)
        pk_of = {k: m for m, k in keys.items()}
        out: set[int] = set()
        for a, b, decision, source, *_ in latest_rows(
            decision_rows_touching(conn, self.store.domain, keys.values())
        ):
            if decision != "merge" or source == "manual":
                continue
            ends = (pk_of.get(a, -1), pk_of.get(b, -1))
            if pairs is None or (min(ends), max(ends)) in pairs:
                out.update(m for m in ends if m in pks)
        return out

    def _newly_shared(self, conn: Connection, pk: int, mine: pd.DataFrame, arriving: set[int]) -> set[int]:
        """The other holders of the emails and phones this mention made shared: written for at
        most `shared_value_max_names` people before it (and the others `arriving` with it), for
        more with it, that a merge joins to another mention: it may have rested on the value as
        a personal one (a rule on a common email, a contact as the evidence beyond a name). A
        nameless mention adds nobody."""
        if not (mine["first_name"].iloc[0] or mine["last_name"].iloc[0]):
            return set()
        domain, most = self.store.domain, self.rules.shared_value_max_names
        out: set[int] = set()
        for column in ("emails", "phones"):
            values = {v for v in mine[column].iloc[0] or () if v}
            now = shared_contact_values(conn, domain, column, values, most) if values else set()
            if now:
                before = shared_contact_values(conn, domain, column, now, most, without=arriving)
                for value in sorted(now - before):
                    out.update(holders_of(conn, domain, column, value, MOST_CONTACT_HOLDERS))
        return self._merged(conn, out - arriving)

    def _with_imported_scores(
        self, conn: Connection, pk: int, key: str, vector: np.ndarray, found: Found
    ) -> PairsToDecide:
        """The mention's candidate pairs with the scores imported for its pairs, and the imported
        pairs blocking did not propose (with their cosine), as the batch run decides them."""
        domain = self.store.domain
        external = load_external_scores(conn, domain, [key])
        if external.empty:
            return PairsToDecide.of(found.pairs.a, found.pairs.b, found.pairs.cosine)
        pk_of = mention_ids(conn, domain, set(external["mention_a"]) | set(external["mention_b"]))
        pk_of[key] = pk

        def cosine_of(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
            ids, rows = vectors_by_ids(
                conn, domain, self.live.encoder.name, {*xa.tolist(), *xb.tolist()} - {pk}
            )
            ids, rows = np.append(ids, pk), np.vstack([rows.reshape(-1, len(vector)), vector[None, :]])
            order = np.argsort(ids, kind="stable")
            return pair_cosines(ids[order], rows[order].astype(np.float32), xa, xb)

        return with_imported_scores(
            found.pairs.a, found.pairs.b, found.pairs.cosine, external, pk_of, np.array([pk]), cosine_of
        )

    def _component(
        self, conn: Connection, pk: int, key: str, decided: pd.DataFrame, frame: pd.DataFrame
    ) -> tuple[set[int], dict[int, tuple[Any, ...]]]:
        """The mentions linked to `pk` through merge decisions in effect (its new ones, the stored
        ones of every other pair) or a shared profile: what clustering may change; and the stored
        decisions of every pair that touches them (`decision_rows_touching`)."""
        domain = self.store.domain
        merged = decided["decision"].to_numpy() == "merge"
        ends = _partners(decided["a"].to_numpy(np.int64)[merged], decided["b"].to_numpy(np.int64)[merged], pk)
        component: set[int] = set()
        frontier = {pk} | set(ends.tolist())
        known_keys = dict(zip(frame["mention_pk"].tolist(), frame["mention_key"].tolist(), strict=True))
        rows: dict[int, tuple[Any, ...]] = {}
        asked: set[str] = set()
        while frontier:
            component |= frontier
            if len(component) > MAX_COMPONENT:
                break
            known_keys.update(mention_keys_of(conn, domain, [m for m in frontier if m not in known_keys]))
            keys = {known_keys[m] for m in frontier if m in known_keys}
            found = decision_rows_touching(conn, domain, keys)
            rows.update(found)
            asked |= keys
            linked_keys = set()
            for a, b, d, source, *_ in latest_rows(found):
                if key in (a, b) and source != "manual":
                    continue  # this mention's pairs are decided anew (above); a person's word stands
                if d == "merge":
                    linked_keys |= {a, b}
            pk_of = {k: m for m, k in known_keys.items()}
            linked = {pk_of[k] for k in linked_keys if k in pk_of}
            linked |= set(mention_ids(conn, domain, linked_keys - set(pk_of)).values())
            membership, _ = membership_of(conn, domain, frontier, profiles_too=False)
            mates = {
                m
                for ms in members_of_profiles(conn, domain, set(membership.members.values())).values()
                for m in ms
            }
            frontier = (linked | mates) - component
        known_keys.update(mention_keys_of(conn, domain, [m for m in component if m not in known_keys]))
        rows.update(
            decision_rows_touching(
                conn, domain, {known_keys[m] for m in component if m in known_keys} - asked
            )
        )
        return component, rows


def rules_only_bundle() -> Bundle:
    return rules_only(Thresholds(1.0, 1.0))


def _outcome(
    key: str,
    pk: int,
    before: Membership,
    state: Membership,
    result: Assignment,
    decided: pd.DataFrame,
    candidates: int,
    seconds: dict[str, float],
) -> MentionOutcome:
    """new_profile (alone, or with mentions that had none), joined (an existing profile), kept (its
    profile, after a change of its content), merged_profiles (its arrival joined profiles)."""
    profile = result.ids[result.pks.tolist().index(pk)]
    merged = sorted({e[1] for e in result.events if e[0] == "merge"} | set(result.retired))
    if result.retired:
        action = "merged_profiles"
    elif before.members.get(pk) == profile:
        action = "kept"
    elif profile in state.created:
        action = "joined"
    else:
        action = "new_profile"
    mine = decided[((decided["a"] == pk) | (decided["b"] == pk)) & (decided["decision"] == "merge")]
    decided_by, score = "", None
    if len(mine):
        best = mine.iloc[int(np.argmax(mine["score"].to_numpy(np.float64)))]
        score = float(best["score"])
        decided_by = str(best["rule"]) if best["source"] == "rule" else f"{best['source']} p={score:.3f}"
    reviews = sum(1 for r in result.reviews if key in (r["mention_a"], r["mention_b"]))
    return MentionOutcome(key, profile, action, decided_by, score, reviews, merged, candidates, seconds)


def _row_of_record(pk: int, key: str, source: str, normalized: dict[str, Any]) -> tuple[Any, ...]:
    """The `frame_from_normalized` row of a mention not stored (no object id yet)."""
    return (pk, key, source, 0, content_hash(normalized), normalized)


def _frame_of_record(pk: int, key: str, source: str, normalized: dict[str, Any]) -> pd.DataFrame:
    return frame_from_normalized([_row_of_record(pk, key, source, normalized)])


_NO_INTERACTIONS = pd.DataFrame(columns=["mention_pk", "object_pk", "kind", "role", "ref", "contacts"])


def _no_interactions() -> pd.DataFrame:
    # A copy of one empty frame: building a frame costs a millisecond and a match has about ten.
    return _NO_INTERACTIONS.copy()


def _blocker_names(flags: int) -> list[str]:
    return list(_blocker_names_of(flags))


@lru_cache(maxsize=4096)
def _blocker_names_of(flags: int) -> tuple[str, ...]:
    from features.blocking import Blocker

    return tuple(Blocker.names_of(flags))


def _explain(champion: Champion, features: pd.DataFrame) -> list[dict[str, float]]:
    """Per pair, the five features that moved the score most (log-odds contributions)."""
    if not len(features) or champion.version == "none":
        return []
    contributions = champion.bundle.model.explain(features)
    columns = [c for c in contributions.columns if c != "bias"]
    values = contributions[columns].to_numpy(np.float64)
    out = []
    for row in values:
        top = np.argsort(-np.abs(row))[:5]
        out.append({columns[j]: round(float(row[j]), 4) for j in top.tolist() if row[j] != 0})
    return out
