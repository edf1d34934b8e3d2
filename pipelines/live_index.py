"""A long-running process's candidate index: the FAISS index `upt block` saved, kept in step with
the store's embeddings, searched one mention at a time.

At start it loads the saved index and reconciles it with the stored embeddings (vectors added
since the file was saved, by this or another process, are added; removed mentions leave). Then,
at most every `sync_seconds`, it adds what other processes wrote since (`embedding_changes`,
an index probe on the update time); its own writes are added at once (`add`). A mention erased
while the process runs may stay in memory until the next full reconcile, but never comes back as
a candidate: candidates are read from the store, which no longer holds it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from features.blocking.order import LAST, order_keys
from features.embedding.encoders import Encoder, load_encoder
from features.embedding.index import (
    REVERSE_REACH,
    TIE_TOLERANCE,
    CandidateIndex,
    exact_similarities,
    half_precision,
    knn_ranked,
    list_reach,
    load_reach,
)
from features.embedding.text import record_texts
from pipelines.block import index_config
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.reads import all_mention_keys
from profiles.store.vectors import embedded_ids, embedding_changes, vectors_by_ids

OVERLAP = dt.timedelta(seconds=2)  # clocks and commit order: re-read a little of what was seen


class LiveIndex:
    def __init__(
        self, store: Store, settings: Settings, encoder: Encoder | None = None, sync_seconds: float = 1.0
    ) -> None:
        self.store, self.settings, self.sync_seconds = store, settings, sync_seconds
        self.encoder = encoder or load_encoder(settings.encoder, settings.model_cache_dir)
        self._lock = threading.RLock()
        self._horizon = dt.datetime.now(dt.UTC)  # when the last look at the store began
        self._synced_at = float("-inf")
        self._order = np.full(0, -1, np.int64)  # mention id -> order key; -1: not read yet
        # mention id -> how far its k + 1 nearest reach (`list_reach`; NaN: not known): saved by
        # `upt block`, read here where not known; a lower bound once others arrive (a list only
        # gets nearer), exact when read
        self._reach = np.full(0, np.nan)
        self.index = CandidateIndex.load(
            settings.index_path(store.domain, self.encoder.name), self.encoder.dim, index_config(settings)
        )
        ids, reach = load_reach(settings.reach_path(store.domain, self.encoder.name))
        self._reach = np.full(int(ids.max(initial=-1)) + 1, np.nan)
        self._reach[ids] = reach
        self.reconcile()

    def reconcile(self) -> None:
        """Make the index hold exactly the stored embeddings (the saved file may lag the store)."""
        with self._lock, self.store.reading() as conn:
            horizon = dt.datetime.now(dt.UTC)
            stored = embedded_ids(conn, self.store.domain, self.encoder.name)
            held = self.index.ids()
            self.index.remove(np.setdiff1d(held, stored))
            saved = self.settings.index_path(self.store.domain, self.encoder.name)
            since = (
                dt.datetime.fromtimestamp(saved.stat().st_mtime, dt.UTC) - OVERLAP if saved.exists() else None
            )
            pks, vectors, _ = embedding_changes(conn, self.store.domain, self.encoder.name, since)
            missing = np.setdiff1d(stored, np.concatenate([held, pks]))
            extra_pks, extra_vectors = vectors_by_ids(conn, self.store.domain, self.encoder.name, missing)
            if len(pks):
                self.index.add(pks, vectors)
            if len(extra_pks):
                self.index.add(extra_pks, extra_vectors)
            self._order = self._order_keys_of_store(conn)
            if len(np.setdiff1d(held, stored)):
                self._reach[:] = np.nan  # a mention removed leaves lists that reach farther
            self.index.enable_lookup()
            self._horizon = horizon
            self._synced_at = time.monotonic()

    def _order_keys_of_store(self, conn: Connection) -> np.ndarray:
        """Every stored mention's order key, by id (-1 where no mention): read once at the start,
        so that the first search into a crowd does not read thousands of keys (1.5 s at a
        million mentions, against 60 ms on the first such search)."""
        ids, keys = all_mention_keys(conn, self.store.domain)
        order = np.full(max(ids, default=-1) + 1, -1, np.int64)
        order[np.asarray(ids, np.int64)] = order_keys(keys)
        return order

    def sync(self, force: bool = False) -> None:
        """Add what other processes stored since the last look (at most every `sync_seconds`):
        vectors written after the previous look began, less `OVERLAP` for commits in flight."""
        if not force and time.monotonic() - self._synced_at < self.sync_seconds:
            return
        with self._lock:
            horizon = dt.datetime.now(dt.UTC)
            with self.store.reading() as conn:
                since = self._horizon - OVERLAP
                pks, vectors, _ = embedding_changes(conn, self.store.domain, self.encoder.name, since)
            if len(pks):
                self.index.add(pks, vectors)
                self._forget_order(pks)
            self._horizon = horizon
            self._synced_at = time.monotonic()

    def encode(self, frame: pd.DataFrame) -> tuple[str, np.ndarray]:
        """(record text, half-precision vector) of a one-mention frame."""
        text = record_texts(frame, self.settings.text_template)[0]
        return text, half_precision(self.encoder.encode([text]))[0]

    def add(self, pk: int, vector: np.ndarray) -> None:
        with self._lock:
            before = self.index.vectors(np.array([pk]))[0]
            if before.any() and not np.array_equal(before, vector):
                # its old content may have been in the lists near it, which now reach farther
                found, _ = self.index.search(before[None, :], REVERSE_REACH)
                near = found[0][(found[0] >= 0) & (found[0] < len(self._reach))]
                self._reach[near] = np.nan
            self.index.add(np.array([pk], np.int64), vector[None, :])
            self._forget_order(np.array([pk], np.int64))

    def _forget_order(self, pks: np.ndarray) -> None:
        pks = pks[pks < len(self._order)]
        self._order[pks] = -1

    def _cached(self, ties_of: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        """`ties_of` (ids -> order keys, read from the store) behind the kept order keys: only
        the ids not seen before are read."""

        def ties(ids: np.ndarray) -> np.ndarray:
            flat = ids.ravel()
            held = flat >= 0
            top = int(flat.max(initial=-1)) + 1
            self._order = _grown(self._order, top, -1)
            out = np.zeros(len(flat), np.int64)
            out[held] = self._order[flat[held]]
            unread = held & (out < 0)
            if unread.any():
                wanted = np.unique(flat[unread])
                read = ties_of(wanted)
                self._order[wanted] = read
                out[unread] = self._order[flat[unread]]
            return out.reshape(ids.shape)

        return ties

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.index.vectors(ids)

    def neighbours(
        self,
        pk: int,
        text: str,
        stored: bool,
        encoded: np.ndarray | None = None,
        ties_of: Callable[[np.ndarray], np.ndarray] | None = None,
        order: int = LAST,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The mention's k + 1 nearest by exact similarity (itself among them when it is held),
        as batch blocking ranks them, ties to the smaller order key (`ties_of`: ids -> the
        mentions' order keys; `order`: this mention's); and its vector (the stored one when it
        is held, else `encoded`, the vector of `text` when the caller has it already)."""
        self.sync()
        with self._lock:
            vector = self.index.vectors(np.array([pk]))[0] if stored else np.zeros(self.index.dim, np.float32)
            if not vector.any():
                vector = encoded if encoded is not None else half_precision(self.encoder.encode([text]))[0]
            held = stored and bool(self.index.vectors(np.array([pk]))[0].any())
            found = knn_ranked(
                self.index,
                vector[None, :],
                self.settings.knn + 1,
                self.settings.knn_floor,
                self.index.vectors,
                unstored=not held,
                ties_of=self._cached(ties_of) if ties_of is not None else None,
                unstored_ties=np.array([order], np.int64),
            )[0]
        return found[found != pk], vector

    def reverse(
        self,
        pk: int,
        vector: np.ndarray,
        ties_of: Callable[[np.ndarray], np.ndarray] | None = None,
        order: int = LAST,
        adding: bool = True,
        pushes: bool = True,
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The other side of batch blocking's embedding pairs of one mention (`pk`, its `vector`,
        its `order` key): the stored mentions that take it among their own k + 1 nearest, as
        `neighbours` ranks them (searched among its `REVERSE_REACH` nearest); and, when it is not
        in the index yet, the pairs (x, y) its arrival takes out of the batch's: y was the last
        of x's list, the new mention pushes it out, and x is not (or no longer) among y's.

        `neighbours` alone gives a mention the pairs of its own list; batch blocking pairs each
        mention with its list, so a mention is also paired with every mention whose list holds
        it. Online, a mention arriving after another is not in that other's list unless this
        asks; and a list it enters drops its last member. `adding`: the mention is to be added to
        the index (the lists it enters will reach less far); without `pushes`, the pairs taken
        out are not looked for (a `match`)."""
        with self._lock:
            held = bool(self.index.vectors(np.array([pk]))[0].any())
            ties = self._cached(ties_of) if ties_of is not None else None
            keep, floor = self.settings.knn + 1, self.settings.knn_floor
            found, _ = self.index.search(vector[None, :], REVERSE_REACH)
            near = found[0][(found[0] >= 0) & (found[0] != pk)]
            if not len(near):
                return np.zeros(0, np.int64), []
            near_sims = exact_similarities(vector[None, :], self.index.vectors(near[None, :]))[0]
            reached = near_sims >= floor - TIE_TOLERANCE
            near, near_sims = near[reached], near_sims[reached]
            radius, searched = self._radii(near, keep, floor, ties)
            close = near_sims >= radius - TIE_TOLERANCE
            near, near_sims, radius = near[close], near_sims[close], radius[close]
            if not len(near):
                return np.zeros(0, np.int64), []
            if not held and not pushes:
                # who takes it is all that is asked, and a mention clearly nearer than a
                # list's reach enters it; only those about as near as its last are ranked
                sure = near_sims > radius + TIE_TOLERANCE
                unsure = near[~sure]
                if not len(unsure):
                    return np.sort(near), []
                lists = self._lists_of(unsure, keep, floor, ties, searched)
                enters, _ = self._entered(unsure, lists, pk, vector, order, floor, ties)
                return np.sort(np.concatenate([near[sure], unsure[enters]])), []
            lists = self._lists_of(near, keep, floor, ties, searched)
            if held:
                return near[(lists == pk).any(axis=1)], []
            enters, last = self._entered(near, lists, pk, vector, order, floor, ties)
            reverse = near[enters]
            for x in reverse.tolist() if adding else ():  # `adding`: it will be in the index
                if x < len(self._reach):
                    self._reach[x] = np.nan  # its list takes the new mention in: it reaches less far
            pushed = [
                (int(x), int(y)) for x, y in zip(near[enters], last[enters], strict=True) if y >= 0 and y != x
            ]
            if not pushed:
                return reverse, []
            others = np.array(sorted({y for _, y in pushed}), np.int64)
            their = self._lists_of(others, keep, floor, ties)
            also, their_last = self._entered(others, their, pk, vector, order, floor, ties)
            row = {int(y): i for i, y in enumerate(others.tolist())}
            lost = []
            for x, y in pushed:
                i = row[y]
                kept = bool((their[i] == x).any()) and not (also[i] and their_last[i] == x)
                if not kept:
                    lost.append((min(x, y), max(x, y)))
            return reverse, sorted(set(lost))

    def _radii(
        self, ids: np.ndarray, keep: int, floor: float, ties: Callable[[np.ndarray], np.ndarray] | None
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """How far each stored mention's list reaches (`_reach`), read where not known; and the
        lists searched to read it, by id."""
        self._reach = _grown(self._reach, int(ids.max(initial=-1)) + 1, np.nan)
        unknown = ids[np.isnan(self._reach[ids])]
        searched: dict[int, np.ndarray] = {}
        if len(unknown):
            queries, lists = self._distinct_lists(unknown, keep, floor, ties)
            self._reach[unknown] = list_reach(queries, lists, floor, self.index.vectors)
            searched = dict(zip(unknown.tolist(), lists, strict=True))
        return self._reach[ids], searched

    def _lists_of(
        self,
        ids: np.ndarray,
        keep: int,
        floor: float,
        ties: Callable[[np.ndarray], np.ndarray] | None,
        known: dict[int, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The stored mentions' own lists of `keep` nearest (-1 where fewer reach `floor`); those
        in `known` (searched just before) are not searched again."""
        known = known or {}
        out = np.full((len(ids), keep), -1, np.int64)
        missing = np.array([i for i, x in enumerate(ids.tolist()) if x not in known], np.intp)
        for i, x in enumerate(ids.tolist()):
            if x in known:
                out[i] = known[x]
        if len(missing):
            out[missing] = self._distinct_lists(ids[missing], keep, floor, ties)[1]
        return out

    def _distinct_lists(
        self, ids: np.ndarray, keep: int, floor: float, ties: Callable[[np.ndarray], np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, lists) of stored mentions, each distinct vector searched once: mentions of one
        record text rank the same neighbours (a crowd of one name near an arrival is searched as
        one), as `upt block` searches each distinct text once."""
        vectors = self.index.vectors(ids[None, :])[0]
        first, row_of = _distinct_rows(vectors)
        lists = knn_ranked(self.index, vectors[first], keep, floor, self.index.vectors, ties_of=ties)
        return vectors, lists[row_of]

    def _entered(
        self,
        ids: np.ndarray,
        lists: np.ndarray,
        pk: int,
        vector: np.ndarray,
        order: int,
        floor: float,
        ties: Callable[[np.ndarray], np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each stored mention of `ids` with its list (`lists`, ranked), whether the new
        mention (`pk`, `vector`, `order`) ranks in it, by similarity, then the smaller order key,
        then the smaller id (`features.embedding.index.ranked_neighbours`); and the member it
        pushes out (-1 where the list had room)."""
        own = self.index.vectors(ids[None, :])[0]
        sims = exact_similarities(own, self.index.vectors(lists))
        new = exact_similarities(own, np.broadcast_to(vector, (len(ids), 1, len(vector))))[:, 0]
        last = lists[:, -1]
        full = last >= 0
        last_sim = sims[:, -1]
        last_tie = ties(last[:, None])[:, 0] if ties is not None else np.zeros(len(ids), np.int64)
        ahead = (new > last_sim) | (
            (new == last_sim) & ((order < last_tie) | ((order == last_tie) & (pk < last)))
        )
        enters = (new >= floor) & (~full | ahead)
        return enters, np.where(full & enters, last, -1)


def _distinct_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the first row of each distinct vector, each row's index among those), vectors told apart
    by their bytes: `np.unique(axis=0)` compares rows as records of 384 fields, 50-80 ms for the
    512 vectors of a crowd around an arrival; this takes under a millisecond."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    row_of = np.empty(len(vectors), np.intp)
    for i, row in enumerate(np.ascontiguousarray(vectors)):
        j = seen.setdefault(row.tobytes(), len(seen))
        if j == len(first):
            first.append(i)
        row_of[i] = j
    return np.array(first, np.intp), row_of


def _grown(array: np.ndarray, size: int, fill: float) -> np.ndarray:
    """`array` (indexed by mention id) long enough for `size` ids: doubled at least, new slots
    `fill`; itself when long enough."""
    if size <= len(array):
        return array
    grown = np.full(max(size, 2 * len(array)), fill, array.dtype)
    grown[: len(array)] = array
    return grown
