"""`upt block`: embeddings, the candidate index and the candidate pairs of what is stored.

Incremental: only mentions whose content changed since their embedding was computed are encoded,
added to the index and queried; deterministic keys and the string pass are recomputed over the
whole domain (they are vectorized and cheap); the stored pairs are updated by difference.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from features.blocking import Blocker, BlockingConfig, CandidatePairs, block, evaluate, knn_pairs
from features.blocking.order import order_keys
from features.comparisons import MentionArrays
from features.embedding.encoders import Encoder, load_encoder
from features.embedding.index import (
    REVERSE_REACH,
    CandidateIndex,
    IndexConfig,
    half_precision,
    knn_ranked,
    list_reach,
    load_reach,
    save_reach,
)
from features.embedding.similarity import pair_cosines
from features.embedding.text import record_texts
from features.frame import frame_fingerprint, load_interactions, load_mentions
from features.pool_cache import interactions_fingerprint
from profiles.errors import NotReady
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import get_info, set_info
from profiles.store.vectors import (
    embedding_hashes,
    load_vectors,
    replace_pairs,
    save_embeddings,
    stored_pairs,
)

Step = Callable[[str, int], Callable[[int], None]]  # (description, total) -> advance(n)
EMBED_BATCH = 4096
# Bump when blocking proposes other pairs for the same mentions and settings, so that stored
# pairs computed by an earlier version are never taken as current (every mention is searched
# again). 2: ties between equally near candidates go to the smaller order key
# (`features.blocking.order`), no longer to the smaller id. 3: the home keys (`Blocker.HOME`).
BLOCKING_VERSION = 3


def _quiet(_: str, __: int) -> Callable[[int], None]:
    return lambda _n: None


@dataclass
class BlockReport:
    mentions: int = 0
    embedded: int = 0
    queried: int = 0
    pairs: int = 0
    index_kind: str = ""
    written: dict[str, int] = field(default_factory=dict)
    giant_keys: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def nothing_ingested(domain: str) -> str:
    return f"domain {domain!r} holds no matchable mention yet: ingest data first (`upt ingest FILE`)"


def blocking_config(settings: Settings) -> BlockingConfig:
    return BlockingConfig(
        max_block=settings.max_block,
        max_name_block=settings.max_name_block,
        knn=settings.knn,
        knn_floor=settings.knn_floor,
        string_k=settings.string_k,
    )


def index_config(settings: Settings) -> IndexConfig:
    return IndexConfig(
        exact_max=settings.index_exact_max,
        approximate=settings.index_approximate,
        ef_search=settings.hnsw_ef_search,
        nprobe=settings.ivf_nprobe,
    )


def blocking_identity(
    frame: pd.DataFrame, interactions: pd.DataFrame, domain: str, settings: Settings
) -> str:
    """What the candidate pairs of a domain follow from: its mentions (ids and content hashes),
    their shared bookings and contacts, and every setting blocking reads. Stored with the pairs;
    equal identities mean the stored pairs are what blocking would compute now."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(frame_fingerprint(frame, domain).encode())
    settings_part = (
        BLOCKING_VERSION,
        settings.encoder,
        settings.text_template,
        blocking_config(settings),
        index_config(settings),
    )
    digest.update(repr(settings_part).encode())
    digest.update(interactions_fingerprint(interactions))
    return digest.hexdigest()


def blocking_key(domain: str) -> str:
    return f"blocked:{domain}"


def neighbours_key(domain: str) -> str:
    return f"neighbours:{domain}"


def neighbour_settings(settings: Settings, encoder: str) -> str:
    """What a mention's stored vector and embedding neighbours follow from besides its content:
    the encoder, the record-text template, k, the cosine floor and the index. When any of these
    changes every mention is embedded and searched again (kept pairs would be the old setting's)."""
    return repr(
        (
            BLOCKING_VERSION,
            encoder,
            settings.text_template,
            settings.knn,
            settings.knn_floor,
            index_config(settings),
        )
    )


def blocking_is_current(conn: Connection, domain: str, identity: str) -> bool:
    """Whether the stored candidate pairs were computed from exactly this identity."""
    return get_info(conn, blocking_key(domain)) == identity


def embed_distinct(
    encoder: Encoder, frame: pd.DataFrame, template: str, step: Step = _quiet
) -> tuple[np.ndarray, np.ndarray]:
    """(one vector per distinct record text, each frame row's text number). Each distinct text is
    encoded once: many mentions of travel data read the same ("ana garcia", nothing else), 31% of
    the rows of a 100,000-mention set."""
    texts = record_texts(frame, template)
    position: dict[str, int] = {}
    row_of = np.fromiter((position.setdefault(t, len(position)) for t in texts), np.int64, len(texts))
    distinct = list(position)
    out = np.zeros((len(distinct), encoder.dim), dtype=np.float32)
    advance = step("embed", len(distinct))
    for start in range(0, len(distinct), EMBED_BATCH):
        out[start : start + EMBED_BATCH] = encoder.encode(distinct[start : start + EMBED_BATCH])
        advance(min(EMBED_BATCH, len(distinct) - start))
    return half_precision(out), row_of


def stored_lookup(pks: np.ndarray, vectors: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """ids (any shape) -> their vectors from (sorted ids, rows); zeros for -1 or unknown ids."""

    def vectors_of(ids: np.ndarray) -> np.ndarray:
        flat = ids.ravel()
        at = np.searchsorted(pks, flat)
        at[at >= len(pks)] = 0
        known = (flat >= 0) & (pks[at] == flat) if len(pks) else np.zeros(len(flat), bool)
        out = np.zeros((len(flat), vectors.shape[1]), np.float32)
        out[known] = vectors[at[known]]
        return out.reshape(*ids.shape, vectors.shape[1])

    return vectors_of


def order_lookup(frame: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """ids (any shape) -> the order keys of those mentions of `frame` (`features.blocking.order`;
    0 for -1 or an id not in it)."""
    pks = frame["mention_pk"].to_numpy(np.int64)
    sort = np.argsort(pks)
    pks, orders = pks[sort], order_keys(frame["mention_key"])[sort]

    def ties_of(ids: np.ndarray) -> np.ndarray:
        flat = ids.ravel()
        at = np.minimum(np.searchsorted(pks, flat), max(len(pks) - 1, 0))
        known = (pks[at] == flat) if len(pks) else np.zeros(len(flat), bool)
        return np.where(known, orders[at] if len(pks) else 0, 0).reshape(ids.shape)

    return ties_of


def _reconcile(
    index: CandidateIndex, frame_pks: np.ndarray, stored_pks: np.ndarray, stored: np.ndarray
) -> None:
    """Make the index hold exactly the stored embeddings of live mentions (after a crash, say)."""
    in_index = index.ids()
    index.remove(np.setdiff1d(in_index, frame_pks))
    missing = np.setdiff1d(stored_pks, in_index)
    if len(missing):
        rows = np.searchsorted(stored_pks, missing)
        index.add(missing, stored[rows])


def _lists_may_reach_farther(old_codes: np.ndarray, old_flags: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """The mentions an embedding pair joined to one of `gone` (removed, or searched again with
    new content): that one may have been in their list, which then reaches farther."""
    emb = (old_flags & int(Blocker.EMBEDDING)) != 0
    a, b = old_codes[emb] >> 32, old_codes[emb] & 0xFFFFFFFF
    return np.unique(np.concatenate([a[np.isin(b, gone)], b[np.isin(a, gone)]]))


def _reach_after(
    path: Path,
    frame_pks: np.ndarray,
    searched: np.ndarray,
    reach: np.ndarray,
    anew: bool,
    unknown: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Every mention's list reach after this run, where known: the searched mentions' new one,
    the others' as saved (a mention's list only gets nearer as others arrive, so the saved reach
    stays a lower bound: `pipelines.live_index.LiveIndex.reverse` asks a little more, never
    less), but for the `unknown` (whose list may reach farther now); `anew` (the settings
    changed): the searched only. The live index reads an unknown reach when it needs it."""
    ids, saved = (np.zeros(0, np.int64), np.zeros(0)) if anew else load_reach(path)
    kept = np.isin(ids, frame_pks) & ~np.isin(ids, unknown)
    return _with_reach(ids[kept], saved[kept], searched, reach)


@dataclass
class Searched:
    """Mentions searched again (`ids`, their `lists` and `reach`); `changed`, those of them whose
    list is not the one their stored pairs were made from."""

    ids: np.ndarray
    lists: np.ndarray
    reach: np.ndarray
    changed: np.ndarray


def _search(
    index: CandidateIndex,
    count: int,
    queries: Callable[[slice], np.ndarray],
    settings: Settings,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    ties_of: Callable[[np.ndarray], np.ndarray],
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(lists, reach) of `count` query vectors, read a batch at a time (`queries` of a slice):
    each one's first k + 1 by exact similarity, ties to the smaller order key (`knn_ranked`),
    the same whichever batch it is in, and the same as one online query finds."""
    lists, reach = [np.full((0, settings.knn + 1), -1, np.int64)], [np.zeros(0)]
    for start in range(0, count, EMBED_BATCH):
        batch = queries(slice(start, start + EMBED_BATCH))
        found = knn_ranked(index, batch, settings.knn + 1, settings.knn_floor, vectors_of, ties_of=ties_of)
        lists.append(found)
        reach.append(list_reach(batch, found, settings.knn_floor, vectors_of))
        if advance is not None:
            advance(len(batch))
    return np.vstack(lists), np.concatenate(reach)


def _search_ids(
    index: CandidateIndex,
    ids: np.ndarray,
    settings: Settings,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    ties_of: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """`_search` of stored mentions, by id."""
    return _search(index, len(ids), lambda part: vectors_of(ids[part]), settings, vectors_of, ties_of)


def _lists_changed(
    index: CandidateIndex,
    stale_vectors: np.ndarray,
    stale_pks: np.ndarray,
    all_pks: np.ndarray,
    farther: np.ndarray,
    saved: tuple[np.ndarray, np.ndarray],
    old_pairs: tuple[np.ndarray, np.ndarray],
    settings: Settings,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    ties_of: Callable[[np.ndarray], np.ndarray],
) -> Searched:
    """The mentions not searched in this run whose lists the searched ones changed: those that
    take a new or changed mention among their k + 1 nearest (found among each new one's
    `REVERSE_REACH` nearest, by their saved reach), and those whose list held a changed or
    removed one (`farther`); searched again, with the other ends of their stored embedding
    pairs (searched too, to know whether each such pair still stands from that other side).
    Where that would search more than searching everything, everything is searched again.
    Without this, an incremental run kept pairs the new mentions pushed out of lists, and missed
    the pairs of lists they entered: its pairs depended on what was blocked before."""
    others = np.setdiff1d(all_pks, stale_pks)
    if len(stale_vectors) * REVERSE_REACH >= len(all_pks) * (settings.knn + 1):
        lists, reach = _search_ids(index, others, settings, vectors_of, ties_of)
        return Searched(others, lists, reach, others)
    near, sims = [], []
    for start in range(0, len(stale_vectors), EMBED_BATCH):
        found, found_sims = index.search(stale_vectors[start : start + EMBED_BATCH], REVERSE_REACH)
        near.append(found.ravel())
        sims.append(found_sims.ravel())
    ids, sims_all = np.concatenate(near), np.concatenate(sims)
    held = (ids >= 0) & np.isin(ids, others)
    ids, sims_all = ids[held], sims_all[held]
    known = np.full(len(ids), settings.knn_floor)
    at = np.searchsorted(saved[0], ids)
    at[at >= len(saved[0])] = 0
    hit = (saved[0][at] == ids) if len(saved[0]) else np.zeros(len(ids), bool)
    known[hit] = saved[1][at[hit]]
    # FAISS's similarities are float32: a margin, then the exact search decides
    candidates = np.union1d(np.unique(ids[sims_all >= known - 1e-3]), np.intersect1d(farther, others))
    lists, reach = _search_ids(index, candidates, settings, vectors_of, ties_of)
    changed = candidates[np.isin(lists, stale_pks).any(axis=1) | np.isin(candidates, farther)]
    old_a, old_b = old_pairs
    partners = np.union1d(old_b[np.isin(old_a, changed)], old_a[np.isin(old_b, changed)])
    partners = np.setdiff1d(np.intersect1d(partners, others), candidates)
    more_lists, more_reach = _search_ids(index, partners, settings, vectors_of, ties_of)
    order = np.argsort(np.concatenate([candidates, partners]), kind="stable")
    return Searched(
        np.concatenate([candidates, partners])[order],
        np.vstack([lists, more_lists])[order],
        np.concatenate([reach, more_reach])[order],
        changed,
    )


def _with_reach(
    ids: np.ndarray, reach: np.ndarray, new_ids: np.ndarray, new_reach: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`ids`' reach with `new_ids`' replaced or added."""
    kept = ~np.isin(ids, new_ids)
    all_ids = np.concatenate([ids[kept], new_ids])
    values = np.concatenate([reach[kept], new_reach])
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], values[order]


@dataclass
class Blocked:
    """What blocking computed, before it is stored: `write()` stores it."""

    frame: pd.DataFrame
    pairs: CandidatePairs
    report: BlockReport
    write: Callable[[], None]


def run_block(
    store: Store,
    settings: Settings,
    step: Step = _quiet,
    encoder: Encoder | None = None,
    loaded: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, CandidatePairs, BlockReport]:
    """Refresh embeddings, index and candidate pairs of the store's domain (`loaded`: its mention
    frame and interactions, when the caller has read them already).

    Embeddings, pairs and the identity they follow from are committed in one transaction, then
    the index is saved; a crash in between is repaired on the next run, which re-adds stored
    vectors missing from the index.
    """
    blocked = compute_blocks(store, settings, step, encoder, loaded)
    blocked.write()
    return blocked.frame, blocked.pairs, blocked.report


def compute_blocks(
    store: Store,
    settings: Settings,
    step: Step = _quiet,
    encoder: Encoder | None = None,
    loaded: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    identity: str | None = None,
) -> Blocked:
    """`run_block` up to the write, which the caller runs when it likes (`upt resolve` runs it
    on another thread while it compares and clusters: storing a million pairs is mostly
    database time). `identity`: the `blocking_identity` of `loaded`, when the caller has it."""
    report = BlockReport()
    clock = time.perf_counter()
    encoder = encoder or load_encoder(settings.encoder, settings.model_cache_dir)
    with store.reading() as conn:
        if loaded is None:
            frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
            shared = load_interactions(conn, store.domain)
        else:
            frame, shared = loaded
        hashes = embedding_hashes(conn, store.domain, encoder.name)
        stored_pks, stored_vectors = load_vectors(conn, store.domain, encoder.name, encoder.dim)
        old_codes, old_flags = stored_pairs(conn, store.domain)
        searched_with = neighbour_settings(settings, encoder.name)
        redo = get_info(conn, neighbours_key(store.domain)) != searched_with
    if frame.empty:
        raise NotReady(nothing_ingested(store.domain))
    frame_pks = frame["mention_pk"].to_numpy(np.int64)
    live = np.isin(stored_pks, frame_pks)
    removed = stored_pks[~live]
    stored_pks, stored_vectors = stored_pks[live], stored_vectors[live]
    report.mentions = len(frame)
    report.seconds["load"] = round(time.perf_counter() - clock, 2)

    clock = time.perf_counter()
    stale = (
        frame
        if redo
        else frame[
            [hashes.get(pk) != h for pk, h in zip(frame["mention_pk"], frame["content_hash"], strict=True)]
        ]
    )
    stale_pks = stale["mention_pk"].to_numpy(np.int64)
    distinct, row_of = embed_distinct(encoder, stale, settings.text_template, step)
    vectors = distinct[row_of]
    report.embedded = len(stale)
    report.seconds["embed"] = round(time.perf_counter() - clock, 2)

    clock = time.perf_counter()
    index_path = settings.index_path(store.domain, encoder.name)
    index = (
        CandidateIndex(encoder.dim, index_config(settings))
        if redo
        else CandidateIndex.load(index_path, encoder.dim, index_config(settings))
    )
    fresh_stored = ~np.isin(stored_pks, stale_pks)
    _reconcile(index, frame_pks, stored_pks[fresh_stored], stored_vectors[fresh_stored])
    index.add(stale_pks, vectors)
    index.maintain()
    report.index_kind = index.kind
    report.seconds["index"] = round(time.perf_counter() - clock, 2)

    clock = time.perf_counter()
    found_a, found_b = [], []
    all_pks = np.concatenate([stored_pks[fresh_stored], stale_pks])
    all_vectors = np.vstack([stored_vectors[fresh_stored], vectors]) if len(all_pks) else stored_vectors
    order = np.argsort(all_pks)
    all_pks, all_vectors = all_pks[order], all_vectors[order]
    vectors_of = stored_lookup(all_pks, all_vectors)
    ties_of = order_lookup(frame)
    # Each distinct record text is searched once and its neighbours serve every mention that reads
    # the same (31% fewer searches at 100k): the neighbours are the first k + 1 by exact
    # similarity, ties to the smaller id (`knn_ranked`), the same whichever batch a text is in, and
    # the same as one online query finds.
    advance = step("knn", len(distinct))
    lists, reaches = _search(
        index, len(distinct), lambda part: distinct[part], settings, vectors_of, ties_of, advance
    )
    a, b = knn_pairs(stale_pks, lists[row_of])
    found_a.append(a)
    found_b.append(b)
    farther = _lists_may_reach_farther(old_codes, old_flags, np.concatenate([removed, stale_pks]))
    reach_ids, reach = _reach_after(
        settings.reach_path(store.domain, encoder.name),
        frame_pks,
        stale_pks,
        reaches[row_of],
        redo,
        farther,
    )
    report.queried = len(stale)
    keep = (old_flags & int(Blocker.EMBEDDING)) != 0
    old_a, old_b = old_codes[keep] >> 32, old_codes[keep] & 0xFFFFFFFF
    still = ~np.isin(old_a, stale_pks) & ~np.isin(old_b, stale_pks)
    if len(stale_pks) and not redo:
        # the lists of mentions searched before that the new or changed ones enter (or leave)
        searched = _lists_changed(
            index,
            distinct,
            stale_pks,
            all_pks,
            farther,
            (reach_ids, reach),
            (old_a, old_b),
            settings,
            vectors_of,
            ties_of,
        )
        changed = searched.changed
        still &= ~np.isin(old_a, changed) & ~np.isin(old_b, changed)
        a, b = knn_pairs(searched.ids, searched.lists)
        found_a.append(a)
        found_b.append(b)
        reach_ids, reach = _with_reach(reach_ids, reach, searched.ids, searched.reach)
        report.queried += len(searched.ids)
    emb_a = np.concatenate([*found_a, old_a[still]])
    emb_b = np.concatenate([*found_b, old_b[still]])
    report.seconds["knn"] = round(time.perf_counter() - clock, 2)

    clock = time.perf_counter()
    pairs = block(frame, blocking_config(settings), (emb_a, emb_b), shared)
    report.seconds["keys_and_strings"] = round(time.perf_counter() - clock, 2)

    clock = time.perf_counter()
    pairs.cosine = pair_cosines(all_pks, all_vectors, pairs.a, pairs.b)
    report.pairs = len(pairs)
    report.giant_keys = pairs.giant_keys
    identity = identity or blocking_identity(frame, shared, store.domain, settings)
    report.seconds["cosines"] = round(time.perf_counter() - clock, 2)

    def write() -> None:
        clock = time.perf_counter()
        with store.transaction() as conn:
            if len(stale):
                save_embeddings(
                    conn,
                    store.domain,
                    encoder.name,
                    stale_pks,
                    stale["content_hash"].tolist(),
                    vectors,
                    set(hashes),
                )
            report.written = replace_pairs(
                conn, store.domain, pairs.a, pairs.b, pairs.blockers, np.nan_to_num(pairs.cosine, nan=0.0)
            )
            set_info(conn, blocking_key(store.domain), identity)
            set_info(conn, neighbours_key(store.domain), searched_with)
        index.save(index_path)
        save_reach(settings.reach_path(store.domain, encoder.name), reach_ids, reach)
        store.refresh_statistics()
        report.seconds["write"] = round(time.perf_counter() - clock, 2)

    return Blocked(frame, pairs, report, write)


def evaluate_blocks(
    store: Store, frame: pd.DataFrame, pairs: CandidatePairs, truth: pd.DataFrame
) -> dict[str, Any]:
    """`features.blocking.evaluate` of the stored candidates, with the recall over true pairs that
    agree on more than a name (their comparison needs the store's bookings and contacts)."""
    with store.reading() as conn:
        interactions = load_interactions(conn, store.domain)
    return evaluate(frame, pairs, truth, MentionArrays.build(frame, interactions))
