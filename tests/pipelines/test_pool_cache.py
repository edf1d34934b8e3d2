"""The kept comparison vectors of the candidate pool: read back exactly as compared, and never
served when the mentions, their travel, the pairs or the comparison code are not the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import features.pairs
from features.frame import load_mentions
from features.pairs import features_for_pairs, load_candidate_features, pool_rows
from features.pool_cache import keep_pool, pool_key, read_pool
from pipelines.block import run_block
from pipelines.ingest import ingest_jsonl
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import Store
from tests.pipelines.helpers import guest, lines
from tests.pipelines.test_block import HashEncoder


@pytest.fixture
def blocked(store: Store, settings: Settings, tmp_path: Path) -> Store:
    info = write_dataset(GeneratorConfig(persons=120, seed=5), tmp_path / "data")
    ingest_jsonl(store, settings, Path(info["objects_file"]))
    run_block(store, settings, encoder=HashEncoder())
    return store


def _pool(store: Store, settings: Settings, cache: bool = True) -> pd.DataFrame:
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path())
        path = settings.candidate_features_path() if cache else None
        return load_candidate_features(conn, store.domain, frame, cache=path).features


def _no_comparing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> pd.DataFrame:
        raise AssertionError("compared again although the kept vectors were current")

    monkeypatch.setattr(features.pairs, "compare", refuse)


def test_kept_vectors_are_read_back_exactly_as_compared(
    blocked: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = _pool(blocked, settings, cache=False)
    assert len(fresh) > 100
    first = _pool(blocked, settings)
    path = settings.candidate_features_path()
    assert path is not None and path.exists()
    _no_comparing(monkeypatch)
    again = _pool(blocked, settings)
    pd.testing.assert_frame_equal(again, fresh)
    pd.testing.assert_frame_equal(first, fresh)
    # laid out as `compare` lays it out: one column-major float32 block
    assert again.drop(columns=["mention_a", "mention_b"]).to_numpy().flags.f_contiguous


def test_new_mentions_changed_pairs_or_a_damaged_file_are_compared_afresh(
    blocked: Store, settings: Settings, tmp_path: Path
) -> None:
    _pool(blocked, settings)
    path = settings.candidate_features_path()
    assert path is not None
    # another mention: the key changes, even before the pairs are blocked again
    new = tmp_path / "new.jsonl"
    new.write_bytes(lines(guest("NEW-1", first_name="Zoe", last_name="Quist")))
    ingest_jsonl(blocked, settings, new)
    run_block(blocked, settings, encoder=HashEncoder())
    pd.testing.assert_frame_equal(_pool(blocked, settings), _pool(blocked, settings, cache=False))
    # the same key but other pairs (a blocker bit flipped by a writer): not these pairs' vectors
    with blocked.reading() as conn:
        frame = load_mentions(conn, blocked.domain)
        pool = load_candidate_features(conn, blocked.domain, frame)
        key = pool_key(
            features.frame.frame_fingerprint(frame, blocked.domain),
            features.frame.load_interactions(conn, blocked.domain),
        )
    flipped = pool.blockers.copy()
    flipped[0] ^= 1
    table = pool.features
    cosine = table["embedding_cosine"].to_numpy(np.float32)
    a, b = table["mention_a"].to_numpy(), table["mention_b"].to_numpy()
    assert read_pool(path, key, a, b, pool.blockers, cosine) is not None
    assert read_pool(path, key, a, b, flipped, cosine) is None
    assert read_pool(path, key, a[1:], b[1:], pool.blockers[1:], cosine[1:]) is None
    assert read_pool(path, "another key", a, b, pool.blockers, cosine) is None
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert read_pool(path, key, a, b, pool.blockers, cosine) is None
    pd.testing.assert_frame_equal(_pool(blocked, settings), _pool(blocked, settings, cache=False))
    # an unwritable place keeps nothing and fails nothing
    keep_pool(tmp_path / "file" / "under-a-file.npz", key, table, pool.blockers, cosine)


def test_other_travel_changes_the_key(blocked: Store, settings: Settings) -> None:
    with blocked.reading() as conn:
        frame = load_mentions(conn, blocked.domain)
        interactions = features.frame.load_interactions(conn, blocked.domain)
    fingerprint = features.frame.frame_fingerprint(frame, blocked.domain)
    assert len(interactions) > 0
    moved = interactions.copy()
    moved.loc[moved.index[0], "ref"] = "another booking"
    assert pool_key(fingerprint, moved) != pool_key(fingerprint, interactions)
    assert pool_key(fingerprint, interactions) == pool_key(fingerprint, interactions.copy())


def test_labelled_pairs_read_from_the_pool_equal_their_comparison_in_either_order(
    blocked: Store, settings: Settings
) -> None:
    pool = _pool(blocked, settings)
    rows = np.arange(0, len(pool), max(1, len(pool) // 40))
    a, b = pool["mention_a"].to_numpy()[rows], pool["mention_b"].to_numpy()[rows]
    swap = np.arange(len(rows)) % 2 == 1
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    with blocked.reading() as conn:
        assert np.array_equal(pool_rows(pool, a, b), rows)
        read = features_for_pairs(conn, blocked.domain, settings.encoder, a, b, pool=pool)
        compared = features_for_pairs(conn, blocked.domain, settings.encoder, a, b)
        # a pair that is no candidate: every pair is compared as before
        ids = load_mentions(conn, blocked.domain)["mention_pk"].to_numpy()
        others = ids[pool_rows(pool, np.full(len(ids), a[0]), ids) < 0]
        lone = np.array([a[0]]), np.array([others[others != a[0]][0]])
        outside = features_for_pairs(conn, blocked.domain, settings.encoder, *lone, pool=pool)
    pd.testing.assert_frame_equal(read, compared)
    assert len(outside) == 1


def test_switched_off_nothing_is_kept(store: Store, tmp_path: Path) -> None:
    assert Settings(home=tmp_path / "h", keep_candidate_features=False).candidate_features_path() is None
