from __future__ import annotations

from pathlib import Path

import numpy as np

from features.embedding.index import CandidateIndex


def unit(rows: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_index_adds_searches_removes_and_persists(tmp_path: Path) -> None:
    vectors = unit(50)
    index = CandidateIndex(16)
    index.add(np.arange(100, 150), vectors)
    ids, sims = index.search(vectors[:3], k=2)
    assert ids[:, 0].tolist() == [100, 101, 102] and np.allclose(sims[:, 0], 1.0, atol=1e-5)
    index.remove(np.array([101]))
    assert 101 not in index.search(vectors[1:2], k=3)[0]
    assert len(index) == 49 and index.kind == "exact"
    ids, _ = index.search(vectors[:1], k=5, floor=0.99)
    assert ids[0].tolist() == [100, -1, -1, -1, -1]
    index.save(tmp_path / "i.faiss")
    again = CandidateIndex.load(tmp_path / "i.faiss", 16)
    assert sorted(again.ids().tolist()) == sorted(index.ids().tolist())


def test_index_turns_hnsw_past_the_threshold_and_erases_removed_vectors(tmp_path: Path) -> None:
    vectors = unit(300, seed=1)
    index = CandidateIndex(16, exact_max=100)
    index.add(np.arange(80), vectors[:80])
    assert index.kind == "exact"
    index.add(np.arange(80, 300), vectors[80:])
    assert index.kind == "hnsw" and len(index) == 300
    ids, _ = index.search(vectors[:20], k=1)
    assert (ids[:, 0] == np.arange(20)).mean() >= 0.95
    index.remove(np.array([5]))
    assert 5 not in index.search(vectors[5:6], k=10)[0]
    assert np.allclose(index._index.reconstruct(5), 0.0)  # the data is gone, not just hidden
    index.save(tmp_path / "h.faiss")
    loaded = CandidateIndex.load(tmp_path / "h.faiss", 16, exact_max=100)
    assert loaded.removed == {5} and len(loaded) == 299
    loaded.compact()
    assert loaded.removed == set() and len(loaded) == 299


def test_replacing_a_vector_keeps_one_copy() -> None:
    index = CandidateIndex(16)
    vectors = unit(2, seed=3)
    index.add(np.array([1]), vectors[:1])
    index.add(np.array([1]), vectors[1:])
    assert len(index) == 1
    assert np.allclose(index.search(vectors[1:], k=1)[1][0, 0], 1.0, atol=1e-5)
