from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.embedding.index import CandidateIndex, IndexConfig, ivf_lists


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
    index = CandidateIndex(16, IndexConfig(exact_max=100, approximate="hnsw"))
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
    loaded = CandidateIndex.load(tmp_path / "h.faiss", 16, IndexConfig(exact_max=100, approximate="hnsw"))
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


def test_index_turns_ivf_past_the_threshold_and_deletes_removed_vectors(tmp_path: Path) -> None:
    vectors = unit(3000, seed=2)
    config = IndexConfig(exact_max=1000, nprobe=64)
    index = CandidateIndex(16, config)
    index.add(np.arange(900), vectors[:900])
    assert index.kind == "exact"
    index.add(np.arange(900, 3000), vectors[900:])
    assert index.kind == "ivf" and len(index) == 3000 and index.trained_on == 3000
    assert index._index.nlist == ivf_lists(3000) > 1
    ids, sims = index.search(vectors[:50], k=1)
    assert (ids[:, 0] == np.arange(50)).all() and np.allclose(sims[:, 0], 1.0, atol=1e-5)
    index.remove(np.array([5, 6]))
    assert not np.isin([5, 6], index.search(vectors[5:7], k=10)[0]).any()
    held_ids, held = index.contents()
    assert len(held_ids) == 2998 and not np.isin([5, 6], held_ids).any()
    assert not (np.abs(held - vectors[5]).max(axis=1) < 1e-6).any()  # the data is gone, not hidden
    rows = np.searchsorted(np.arange(3000), held_ids)
    assert np.allclose(held, vectors[rows])
    index.add(np.array([5]), vectors[5:6])  # grows by add, no retraining
    assert index.trained_on == 3000 and len(index) == 2999
    index.save(tmp_path / "v.faiss")
    loaded = CandidateIndex.load(tmp_path / "v.faiss", 16, config)
    assert loaded.kind == "ivf" and loaded.trained_on == 3000
    assert sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())


def test_maintain_retrains_an_outgrown_ivf_index_and_switching_kind_rebuilds() -> None:
    vectors = unit(6000, seed=4)
    index = CandidateIndex(16, IndexConfig(exact_max=1000))
    index.add(np.arange(1200), vectors[:1200])
    assert index.trained_on == 1200 and not index.maintain()
    index.add(np.arange(1200, 6000), vectors[1200:])
    assert index.maintain() and index.trained_on == 6000 and len(index) == 6000
    assert index._index.nlist == ivf_lists(6000)


def test_an_index_saved_as_hnsw_loads_as_the_configured_ivf(tmp_path: Path) -> None:
    vectors = unit(400, seed=5)
    hnsw = CandidateIndex(16, IndexConfig(exact_max=100, approximate="hnsw"))
    hnsw.add(np.arange(400), vectors)
    hnsw.save(tmp_path / "x.faiss")
    loaded = CandidateIndex.load(tmp_path / "x.faiss", 16, IndexConfig(exact_max=100))
    assert loaded.kind == "ivf" and sorted(loaded.ids().tolist()) == list(range(400))


@pytest.mark.parametrize("n", [0, 10, 39, 40, 1000, 97_704, 1_000_000, 10**9])
def test_ivf_lists_are_trainable_and_grow_with_the_square_root(n: int) -> None:
    lists = ivf_lists(n)
    assert lists >= 1 and (lists == 1 or lists * 40 <= n) and lists <= 65_536
    if 50_000 <= n <= 10**7:  # below, trainability bounds the lists
        assert 2 * np.sqrt(n) <= lists <= 8 * np.sqrt(n)


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_a_small_search_runs_on_its_thread_alone_and_leaves_the_thread_count_as_it_was(kind: str) -> None:
    import faiss

    vectors = unit(2_000, seed=3)
    config = IndexConfig(
        exact_max=10**9 if kind == "exact" else 100, approximate="ivf" if kind == "ivf" else "hnsw"
    )
    index = CandidateIndex(16, config)
    index.add(np.arange(2_000), vectors)
    assert index.kind == kind
    before = faiss.omp_get_max_threads()
    one_by_one = [index.search(vectors[i : i + 1], k=10) for i in range(20)]
    assert faiss.omp_get_max_threads() == before
    batch_ids, batch_sims = index.search(vectors[:20], k=10)  # the threaded path
    assert np.array_equal(np.vstack([ids for ids, _ in one_by_one]), batch_ids)
    assert np.allclose(np.vstack([sims for _, sims in one_by_one]), batch_sims, atol=1e-6)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_knn_ranked_takes_the_smallest_ids_of_a_crowd_alone_and_in_a_batch(kind: str) -> None:
    """A crowd of identical records (name-only "mary smith"s) larger than any first fetch: each
    query's neighbours are the crowd's smallest ids, one query at a time as in a batch; a crowd
    under the floor (a record with no text: a zero vector) gives none."""
    from features.embedding.index import knn_ranked

    rng = np.random.default_rng(5)
    others = unit(3_000, seed=6)
    crowd = np.repeat(unit(1, seed=7), 700, axis=0)
    vectors = np.vstack([others, crowd])
    ids = rng.permutation(len(vectors)).astype(np.int64) + 10
    config = IndexConfig(exact_max=10**9 if kind == "exact" else 100, nprobe=8)
    index = CandidateIndex(16, config)
    index.add(ids, vectors)
    index.enable_lookup()  # vectors by id, as the live index reads them
    assert index.kind == kind
    crowd_ids = np.sort(ids[len(others) :])
    queries = np.vstack([crowd[:1], np.zeros((1, 16), np.float32), others[:3]])
    batch = knn_ranked(index, queries, 6, 0.5, index.vectors)
    alone = np.vstack([knn_ranked(index, q[None, :], 6, 0.5, index.vectors) for q in queries])
    assert np.array_equal(batch, alone)
    assert batch[0].tolist() == crowd_ids[:6].tolist()
    assert (batch[1] == -1).all()
    unstored = knn_ranked(index, crowd[:1], 6, 0.5, index.vectors, unstored=True)
    assert unstored[0].tolist() == crowd_ids[:6].tolist()  # itself ties, as the largest id


def test_knn_ranked_breaks_ties_by_order_key_whatever_the_ids() -> None:
    """With the mentions' order keys, a crowd's neighbours are those of the smallest keys, the
    same under any numbering of the ids (the store numbers mentions in order of arrival); a query
    not stored yet takes its place among them by its own key."""
    from features.embedding.index import knn_ranked

    crowd = np.repeat(unit(1, seed=7), 40, axis=0)
    vectors = np.vstack([unit(200, seed=6), crowd])
    keys = np.random.default_rng(3).integers(0, 2**62, len(vectors))  # one per mention
    smallest = np.sort(keys[200:])
    chosen = []
    for numbering in (np.arange(len(vectors)), np.random.default_rng(4).permutation(len(vectors))):
        ids = numbering.astype(np.int64) + 1
        key_of = dict(zip(ids.tolist(), keys.tolist(), strict=True))
        index = CandidateIndex(16, IndexConfig(exact_max=10**9))
        index.add(ids, vectors)
        index.enable_lookup()

        def ties_of(found: np.ndarray, key_of: dict[int, int] = key_of) -> np.ndarray:
            return np.array([key_of.get(int(i), 0) for i in found.ravel()], np.int64).reshape(found.shape)

        got = knn_ranked(index, crowd[:1], 6, 0.5, index.vectors, ties_of=ties_of)[0]
        chosen.append([key_of[int(i)] for i in got])
        own = np.array([smallest[1] + 1])  # between the crowd's second and third keys
        unstored = knn_ranked(
            index, crowd[:1], 6, 0.5, index.vectors, unstored=True, ties_of=ties_of, unstored_ties=own
        )[0]
        assert unstored[2] == -1  # itself, third
        assert [key_of[int(i)] for i in unstored if i >= 0] == smallest[:5].tolist()
    assert chosen[0] == chosen[1] == smallest[:6].tolist()
