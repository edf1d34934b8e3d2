"""The FAISS candidate index: k nearest neighbours by cosine, persisted beside the store.

Exact inner-product search while the index is small (it runs at the machine's FMA peak and is
fine up to about 200k vectors); above `exact_max` it becomes HNSW (M=32), which answers one query
in about a millisecond. Both grow by `add`, never by a rebuild. Removal is exact for the flat
index; HNSW cannot drop nodes, so removed ids are zeroed in its storage (their data is gone) and
masked from every search until the next rebuild (`compact`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

HNSW_M = 32


def _faiss() -> Any:
    """The faiss module, imported on use (it is heavy) and typed loosely: its stubs lag its API."""
    import faiss

    return faiss


class CandidateIndex:
    def __init__(self, dim: int, exact_max: int = 200_000, ef_search: int = 128) -> None:
        faiss = _faiss()

        self.dim = dim
        self.exact_max = exact_max
        self.ef_search = ef_search
        # faiss' own type stubs lag its API (SearchParametersHNSW, storage, codes): typed loosely.
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.removed: set[int] = set()

    @property
    def kind(self) -> str:
        faiss = _faiss()

        return "hnsw" if isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWFlat) else "exact"

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self.removed)

    def ids(self) -> np.ndarray:
        faiss = _faiss()

        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if not self.removed:
            return all_ids
        return all_ids[~np.isin(all_ids, np.fromiter(self.removed, dtype=np.int64))]

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors; switches to HNSW once the index outgrows `exact_max`."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        self.remove(ids)
        self.removed.difference_update(ids.tolist())
        if self.kind == "exact" and self._index.ntotal + len(ids) > self.exact_max:
            self._to_hnsw()
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        faiss = _faiss()

        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0 or self._index.ntotal == 0:
            return
        if self.kind == "exact":
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

    def _to_hnsw(self) -> None:
        faiss = _faiss()

        ids = self.ids()
        vectors = (
            np.vstack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dim))
        )
        hnsw = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 64
        self._index = faiss.IndexIDMap2(hnsw)
        self.removed = set()
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def compact(self) -> None:
        """Rebuild without removed vectors (an offline maintenance step, never per record)."""
        if self.kind == "hnsw" and self.removed:
            self._to_hnsw()

    def search(self, vectors: np.ndarray, k: int, floor: float = -1.0) -> tuple[np.ndarray, np.ndarray]:
        """(ids, similarities), each (n, k); slots below `floor` or empty hold id -1."""
        faiss = _faiss()

        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index.ntotal == 0 or len(queries) == 0:
            return np.full((len(queries), k), -1, dtype=np.int64), np.zeros(
                (len(queries), k), dtype=np.float32
            )
        params = None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
            if self.removed:
                params.sel = faiss.IDSelectorNot(
                    faiss.IDSelectorBatch(np.fromiter(self.removed, dtype=np.int64))
                )
        elif self.removed:
            params = faiss.SearchParameters(
                sel=faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self.removed, dtype=np.int64)))
            )
        sims, ids = self._index.search(queries, k, params=params)
        ids[sims < floor] = -1
        return ids, sims

    def save(self, path: Path) -> None:
        faiss = _faiss()

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self._index, str(tmp))
        tmp.replace(path)
        meta = {"dim": self.dim, "exact_max": self.exact_max, "removed": sorted(self.removed)}
        path.with_suffix(".json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path, dim: int, exact_max: int = 200_000, ef_search: int = 128) -> CandidateIndex:
        """The saved index, or an empty one when none is saved (or its dimension changed)."""
        faiss = _faiss()

        index = cls(dim, exact_max, ef_search)
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta["dim"] == dim:
                index._index = faiss.read_index(str(path))
                index.removed = set(meta.get("removed", []))
        return index
