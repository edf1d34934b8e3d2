"""The FAISS candidate index: k nearest neighbours by cosine, persisted beside the store.

Exact inner-product search while the index is small (it runs at the machine's FMA peak); above
`exact_max` vectors it becomes approximate: an inverted file (IVF, the default) or HNSW (M=32).
Measured on 97,704 travel vectors here (BENCHMARKS.md), IVF with 1,024 lists and 16 probed builds
and answers the all-mentions kNN in 7.7 s against HNSW's 16.6 s at the same tie-aware recall.

Both grow by `add`, never by a rebuild on the way. Removal is exact for the flat and IVF indexes
(the data is deleted); HNSW cannot drop nodes, so removed ids are zeroed in its storage (their data
is gone) and masked from every search. `maintain` is the batch path's housekeeping: it retrains an
IVF index whose size has outgrown its lists and rebuilds HNSW without its masked nodes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

HNSW_M = 32
IVF_POINTS_PER_LIST = 40  # k-means sample per list (faiss warns below 39)
IVF_REGROW = 4  # retrain an IVF index once it holds this many times its training size
HNSW_MASKED_REBUILD = 0.1  # rebuild HNSW once this share of its nodes is masked
# Below this many queries a search runs on the calling thread alone: waking the OpenMP team costs
# more than it saves (one query on 100k flat vectors, the machine busy: 9.7 ms alone, 34 ms on two threads).
SINGLE_THREAD_QUERIES = 8


def _faiss() -> Any:
    """The faiss module, imported on use (it is heavy) and typed loosely: its stubs lag its API."""
    import faiss

    return faiss


@contextmanager
def _on_this_thread_only(faiss: Any) -> Iterator[None]:
    """Run faiss's OpenMP regions on the calling thread alone, then restore its setting.

    OpenMP keeps the thread count per calling thread (libgomp's ICVs), so this changes nothing
    for the process's other threads: a server's other requests and a batch run keep their teams."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass(frozen=True)
class IndexConfig:
    exact_max: int = 200_000
    approximate: Literal["ivf", "hnsw"] = "ivf"
    ef_search: int = 128  # HNSW search breadth
    nprobe: int = 16  # IVF lists searched per query


def ivf_lists(n: int) -> int:
    """Lists for an IVF index of n vectors: the power of two nearest 4 sqrt(n), trainable on n."""
    target = 2 ** round(np.log2(max(4 * np.sqrt(max(n, 1)), 1)))
    return int(max(1, min(target, 65_536, n // IVF_POINTS_PER_LIST)))


class CandidateIndex:
    def __init__(self, dim: int, config: IndexConfig | None = None) -> None:
        faiss = _faiss()

        self.dim = dim
        self.config = config or IndexConfig()
        # faiss' own type stubs lag its API (SearchParametersHNSW, storage, codes): typed loosely.
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.removed: set[int] = set()
        self.trained_on = 0  # vectors the IVF lists were trained on

    @property
    def kind(self) -> str:
        faiss = _faiss()

        if isinstance(self._index, faiss.IndexIVFFlat):
            return "ivf"
        return "hnsw" if isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWFlat) else "exact"

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self.removed)

    def ids(self) -> np.ndarray:
        """The ids held (removed ones excepted)."""
        if self.kind == "ivf":
            return self._ivf_contents(vectors=False)[0]
        all_ids, keep = self._mapped_ids()
        return all_ids[keep]

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything held, masked HNSW nodes excepted."""
        if self.kind == "ivf":
            return self._ivf_contents(vectors=True)
        all_ids, keep = self._mapped_ids()
        vectors = (
            self._index.index.reconstruct_n(0, len(all_ids)) if len(all_ids) else np.zeros((0, self.dim))
        )
        return all_ids[keep], np.asarray(vectors, np.float32)[keep]

    def _mapped_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id of the exact or HNSW id map, in storage order, and which are not masked."""
        all_ids = _faiss().vector_to_array(self._index.id_map).astype(np.int64)
        return all_ids, ~np.isin(all_ids, np.fromiter(self.removed, dtype=np.int64))

    def _ivf_contents(self, vectors: bool) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()

        lists = self._index.invlists
        ids, data = [], []
        for number in range(self._index.nlist):
            size = lists.list_size(number)
            if size == 0:
                continue
            ids.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
            if vectors:
                raw = faiss.rev_swig_ptr(lists.get_codes(number), size * self.dim * 4)
                data.append(np.frombuffer(raw.tobytes(), np.float32).reshape(size, self.dim))
        all_ids = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
        all_vectors = np.vstack(data) if data else np.zeros((0, self.dim), np.float32)
        return all_ids, all_vectors

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors; turns approximate once the index outgrows `exact_max`."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        self.remove(ids)
        self.removed.difference_update(ids.tolist())
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.kind == "exact" and self._index.ntotal + len(ids) > self.config.exact_max:
            held_ids, held = self.contents()
            self._build(np.concatenate([held_ids, ids]), np.vstack([held, vectors]))
            return
        if len(ids) < SINGLE_THREAD_QUERIES:  # an online write: no thread team for one vector
            with _on_this_thread_only(_faiss()):
                self._index.add_with_ids(vectors, ids)
        else:
            self._index.add_with_ids(vectors, ids)

    def _build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """A fresh approximate index of these vectors (the switch from exact, or `maintain`)."""
        faiss = _faiss()

        self.removed = set()
        if self.config.approximate == "hnsw":
            hnsw = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 64
            self._index = faiss.IndexIDMap2(hnsw)
        else:
            lists = ivf_lists(len(ids))
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, lists, faiss.METRIC_INNER_PRODUCT)
            sample = min(len(vectors), lists * IVF_POINTS_PER_LIST)
            rows = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
            ivf.cp.max_points_per_centroid = IVF_POINTS_PER_LIST + 1  # already sampled: no warning
            ivf.train(vectors[rows])
            self._index = ivf
            self.trained_on = len(ids)
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        faiss = _faiss()

        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0 or self._index.ntotal == 0:
            return
        if self.kind == "ivf" and self._index.direct_map.type == faiss.DirectMap.Hashtable:
            self._index.remove_ids(faiss.IDSelectorArray(ids))  # what a hash-table direct map takes
            return
        if self.kind in ("exact", "ivf"):
            self._index.remove_ids(faiss.IDSelectorBatch(ids))
            return
        present = set(faiss.vector_to_array(self._index.id_map).tolist())
        gone = [int(i) for i in ids if int(i) in present and int(i) not in self.removed]
        self._zero(gone)
        self.removed.update(gone)

    def _zero(self, ids: list[int]) -> None:
        """Overwrite the stored vectors of `ids` in HNSW storage with zeros (erasure)."""
        faiss = _faiss()

        if not ids:
            return
        id_map = faiss.vector_to_array(self._index.id_map)
        positions = np.nonzero(np.isin(id_map, np.asarray(ids, dtype=np.int64)))[0]
        storage = faiss.downcast_index(faiss.downcast_index(self._index.index).storage)
        codes = faiss.vector_to_array(storage.codes).view(np.float32).reshape(-1, self.dim)
        codes[positions] = 0.0
        faiss.copy_array_to_vector(codes.view(np.uint8).ravel(), storage.codes)

    def maintain(self) -> bool:
        """Batch housekeeping, never run per record: retrain an IVF index that has grown
        `IVF_REGROW` times past its training size (its lists get long and slow), rebuild HNSW once
        a tenth of its nodes are masked. True if the index was rebuilt."""
        outgrown = self.kind == "ivf" and self._index.ntotal > IVF_REGROW * max(self.trained_on, 1)
        masked = self.kind == "hnsw" and len(self.removed) > HNSW_MASKED_REBUILD * self._index.ntotal
        if outgrown or masked:
            self._build(*self.contents())
        return outgrown or masked

    def enable_lookup(self) -> None:
        """Let `vectors` read an inverted-file index by id (a hash table from id to list slot,
        kept up to date by `add` and `remove`); the flat and HNSW indexes always can."""
        faiss = _faiss()

        if self.kind == "ivf" and self._index.direct_map.type != faiss.DirectMap.Hashtable:
            self._index.set_direct_map_type(faiss.DirectMap.Hashtable)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids (any shape); zeros for -1 and ids not held."""
        flat = np.asarray(ids, np.int64).ravel()
        out = np.zeros((len(flat), self.dim), np.float32)
        wanted = (
            (flat >= 0) & ~np.isin(flat, np.fromiter(self.removed, np.int64)) if self.removed else flat >= 0
        )
        if wanted.any():
            try:
                out[wanted] = self._index.reconstruct_batch(flat[wanted])
            except RuntimeError:  # an id not held: one by one, leaving it zero
                for i in np.flatnonzero(wanted).tolist():
                    try:
                        out[i] = self._index.reconstruct(int(flat[i]))
                    except RuntimeError:
                        continue
        return out.reshape(*np.shape(ids), self.dim)

    def compact(self) -> None:
        """Rebuild HNSW without its masked nodes (an offline maintenance step, never per record)."""
        if self.kind == "hnsw" and self.removed:
            self._build(*self.contents())

    def search(self, vectors: np.ndarray, k: int, floor: float = -1.0) -> tuple[np.ndarray, np.ndarray]:
        """(ids, similarities), each (n, k); slots below `floor` or empty hold id -1."""
        faiss = _faiss()

        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index.ntotal == 0 or len(queries) == 0:
            return np.full((len(queries), k), -1, dtype=np.int64), np.zeros(
                (len(queries), k), dtype=np.float32
            )
        params = None
        masked = (
            faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self.removed, dtype=np.int64)))
            if self.removed
            else None
        )
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.ef_search, k))
            if masked is not None:
                params.sel = masked
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=min(self.config.nprobe, self._index.nlist))
        elif masked is not None:
            params = faiss.SearchParameters(sel=masked)
        if len(queries) < SINGLE_THREAD_QUERIES:
            with _on_this_thread_only(faiss):
                sims, ids = self._index.search(queries, k, params=params)
        else:
            sims, ids = self._index.search(queries, k, params=params)
        ids[sims < floor] = -1
        return ids, sims

    def save(self, path: Path) -> None:
        faiss = _faiss()

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self._index, str(tmp))
        tmp.replace(path)
        meta = {
            "dim": self.dim,
            "kind": self.kind,
            "trained_on": self.trained_on,
            "removed": sorted(self.removed),
        }
        path.with_suffix(".json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path, dim: int, config: IndexConfig | None = None) -> CandidateIndex:
        """The saved index, or an empty one when none is saved (or its dimension changed).

        A saved approximate index of the other kind than configured is rebuilt as configured."""
        faiss = _faiss()

        index = cls(dim, config)
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta["dim"] == dim:
                index._index = faiss.read_index(str(path))
                index.removed = set(meta.get("removed", []))
                index.trained_on = int(meta.get("trained_on", 0))
                if index.kind not in ("exact", index.config.approximate):
                    index._build(*index.contents())
        return index


EXACT_SLICE_BYTES = 1 << 20
KNN_MARGIN = 8  # extra neighbours fetched, so that the exact re-ranking sees every near tie


def exact_similarities(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Inner products of each query with its candidates, (n, d) x (n, m, d) -> (n, m), in float64
    with one summation order whatever the batch: FAISS's single-query and batched (BLAS) paths
    round differently, and a tie must fall the same way online and in a batch."""
    return np.einsum("nd,nmd->nm", queries.astype(np.float64), candidates.astype(np.float64))


def ranked_neighbours(
    found: np.ndarray,
    sims: np.ndarray,
    keep: int,
    floor: float,
    unstored_self: np.ndarray | None = None,
    ties: np.ndarray | None = None,
    unstored_ties: np.ndarray | None = None,
) -> np.ndarray:
    """Of each query's candidates (`found` ids, -1 where empty, with their exact `sims`), the first
    `keep` by similarity, ties to the smaller tie key (`ties`, one per found id: the mentions'
    order keys, `features.blocking.order`), then to the smaller id; those under `floor` set to
    -1. A stored query is among its own candidates (the caller drops it); a query not stored yet
    takes part with its own similarity `unstored_self` and tie key `unstored_ties` (default: after
    every other), as it would once stored. (n, keep) ids."""
    none = np.iinfo(np.int64).max
    ids = np.where(found >= 0, found.astype(np.int64), none)
    sims = np.where(found >= 0, sims, -np.inf)
    keys = np.where(found >= 0, ties, none) if ties is not None else np.zeros(ids.shape, np.int64)
    if unstored_self is not None:
        ids = np.hstack([ids, np.full((len(ids), 1), none - 1)])
        sims = np.hstack([sims, np.asarray(unstored_self, np.float64)[:, None]])
        own = np.full(len(ids), none - 1) if unstored_ties is None else np.asarray(unstored_ties, np.int64)
        keys = np.hstack([keys, own[:, None]])
    order = np.lexsort((ids, keys, -sims), axis=-1)[:, :keep]
    chosen = np.take_along_axis(ids, order, axis=1)
    chosen_sims = np.take_along_axis(sims, order, axis=1)
    return np.where((chosen >= none - 1) | (chosen_sims < floor), -1, chosen)


# How many of a mention's nearest are asked whether it is among their own k + 1 nearest. A
# mention in a sparse region takes as its k-th nearest one that has dozens nearer to it (on 200
# generated people's 1,086 mentions, one in twenty was some mention's neighbour from the 49th to
# the 72nd place of its own list): a list's reach (`list_reach`) sorts out who can take it.
REVERSE_REACH = 512
TIE_TOLERANCE = 1e-5  # FAISS's single and batched paths may order scores this close either way
MAX_FETCH = 4096
CROWD_GROWTH = 16


def knn_ranked(
    index: CandidateIndex,
    queries: np.ndarray,
    keep: int,
    floor: float,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    unstored: bool = False,
    chunk: int = 2048,
    ties_of: Callable[[np.ndarray], np.ndarray] | None = None,
    unstored_ties: np.ndarray | None = None,
) -> np.ndarray:
    """Each query's `keep` nearest stored vectors by exact similarity, ties to the smaller order
    key (`ties_of` maps an id matrix to the mentions' order keys; without it, ties go to the
    smaller id), see `ranked_neighbours`; `vectors_of` maps an id matrix to its vectors (zeros
    for -1); `unstored_ties`, the order keys of queries not stored yet. One code
    path for one online query and a batch of them, so both find the same neighbours: when the
    last vector FAISS returned is about as similar as the one ranked `keep`-th (a crowd of
    identical records, whose order FAISS's paths break differently), the query asks again for
    more, until the crowd is in; a crowd under `floor` is not asked for."""
    out = np.full((len(queries), keep), -1, np.int64)
    # The largest fetch: the first doubling of the first that reaches the cap. A crowd grows the
    # fetch sixteen times at a step, never past it: a crowd that is in at a smaller fetch gives the
    # same neighbours at a larger one, so the step changes the cost (a crowd of a few thousand
    # identical name-only records took nine searches), never the answer.
    last = keep + KNN_MARGIN
    while last < min(MAX_FETCH, len(index)):
        last *= 2
    for start in range(0, len(queries), chunk):
        part = np.ascontiguousarray(queries[start : start + chunk], np.float32)
        rows = np.arange(len(part))
        fetch = keep + KNN_MARGIN
        while len(rows):
            found, _ = index.search(part[rows], fetch)
            sims = _similarities_of(part[rows], found, vectors_of)
            own = (
                np.einsum("nd,nd->n", part[rows].astype(np.float64), part[rows].astype(np.float64))
                if unstored
                else None
            )
            chosen = ranked_neighbours(
                found,
                sims,
                keep,
                floor,
                own,
                ties_of(found) if ties_of is not None else None,
                unstored_ties[start + rows] if unstored and unstored_ties is not None else None,
            )
            out[start + rows] = chosen
            ranked = np.sort(np.where(found >= 0, sims, -np.inf), axis=1)[:, ::-1]
            full = (found >= 0).all(axis=1)
            crowded = full & (ranked[:, -1] >= ranked[:, min(keep, fetch) - 1] - TIE_TOLERANCE)
            # a crowd under the floor changes nothing: none of it is kept (a record with no text
            # has a zero vector, tied with every stored one, and asked again up to `MAX_FETCH`)
            crowded &= ranked[:, -1] >= floor - TIE_TOLERANCE
            if fetch >= last:
                break
            rows, fetch = rows[crowded], min(fetch * CROWD_GROWTH, last)
    return out


def list_reach(
    queries: np.ndarray, lists: np.ndarray, floor: float, vectors_of: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """How far each query's list of nearest (`knn_ranked`'s rows) reaches: its similarity with
    the last of the list, or `floor` where the list has room. A vector less similar than that
    cannot enter the list; more similar, it may (ties go by order key)."""
    last = lists[:, -1]
    sims = exact_similarities(np.asarray(queries, np.float32), vectors_of(last[:, None]))[:, 0]
    return np.where(last >= 0, sims, floor)


def save_reach(path: Path, ids: np.ndarray, reach: np.ndarray) -> None:
    """Each mention's `list_reach`, kept beside the index it was searched in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=np.asarray(ids, np.int64), reach=np.asarray(reach, np.float64))
    tmp.replace(path)


def load_reach(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids, reach) saved by `save_reach`; empty when none is saved."""
    if not path.exists():
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    with np.load(path) as saved:
        return saved["ids"].astype(np.int64), saved["reach"].astype(np.float64)


def _similarities_of(
    queries: np.ndarray, found: np.ndarray, vectors_of: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """`exact_similarities` of each query with its `found` ids, read and widened a slice of ids at
    a time (each under a megabyte): numpy asks the kernel for huge pages on arrays of 4 MB and
    more, and faulting those in took 10 to 30 ms where a crowd brought 3,584 candidates to one
    online query. Each dot product is the same as in one piece."""
    step = max(1, EXACT_SLICE_BYTES // max(1, len(queries) * queries.shape[1] * 8))
    if found.shape[1] <= step:
        return exact_similarities(queries, vectors_of(found))
    out = np.empty(found.shape, np.float64)
    for start in range(0, found.shape[1], step):
        block = found[:, start : start + step]
        out[:, start : start + step] = exact_similarities(queries, vectors_of(block))
    return out


def half_precision(vectors: np.ndarray) -> np.ndarray:
    """Vectors as the store keeps them (float16), back in float32: the same values whether a
    vector was just encoded or read back, so cosines and neighbours do not depend on which."""
    return np.asarray(vectors, np.float32).astype(np.float16).astype(np.float32)
