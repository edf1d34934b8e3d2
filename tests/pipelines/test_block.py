"""`upt block` end to end: incremental refresh, crash repair, evaluation against a truth file."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from features.blocking import Blocker, CandidatePairs
from pipelines.block import run_block
from pipelines.ingest import ingest_jsonl
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import Store, open_store
from tests.pipelines.helpers import guest, lines
from tests.pipelines.test_cli import upt


class HashEncoder:
    """A deterministic stand-in encoder for pipeline tests: character trigram hashing."""

    name = "hash"
    dim = 64

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for i in range(max(len(text) - 2, 1)):
                out[row, zlib.crc32(text[i : i + 3].encode()) % self.dim] += (
                    1  # not hash(): salted per process
                )
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def pair_indexes(store: Store, table: str = "candidate_pairs") -> set[tuple[str, ...]]:
    """The column lists of a table's secondary indexes (by default the candidate pairs')."""
    from sqlalchemy import inspect

    with store.reading() as conn:
        return {tuple(i["column_names"]) for i in inspect(conn).get_indexes(table)}


def test_block_is_incremental_and_repairs_a_lost_index(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from profiles.store import db as store_db

    monkeypatch.setattr(store_db, "REBUILD_INDEXES_FROM", 1)  # the first write takes the bulk path
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        lines(
            guest("G-1", first_name="Ana", last_name="Garcia", emails=[{"address": "a@x.com"}]),
            guest("G-2", first_name="Anna", last_name="Garcia", emails=[{"address": "a@x.com"}]),
            guest("G-3", first_name="Luis", last_name="Perez"),
        )
    )
    ingest_jsonl(store, settings, path)
    encoder = HashEncoder()
    _, pairs, report = run_block(store, settings, encoder=encoder)
    assert (report.mentions, report.embedded) == (3, 3)
    assert (1, 2) in set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True))
    assert report.written["inserted"] >= 1 and pair_indexes(store) == {("domain",), ("mention_b",)}
    _, again, report = run_block(store, settings, encoder=encoder)
    assert report.embedded == 0 and report.written == {"inserted": 0, "updated": 0, "deleted": 0}
    assert np.array_equal(again.a, pairs.a)

    path.write_bytes(
        lines(
            guest(
                "G-3",
                "2024-02-01T00:00:00Z",
                first_name="Luisa",
                last_name="Garcia",
                emails=[{"address": "a@x.com"}],
            )
        )
    )
    ingest_jsonl(store, settings, path)
    settings.index_path(store.domain, encoder.name).unlink()  # as if a crash lost the index file
    _, pairs, report = run_block(store, settings, encoder=encoder)
    assert report.embedded == 1
    assert {(1, 3), (2, 3)} <= set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True))


def test_a_changed_neighbour_setting_embeds_and_searches_everything_again(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    people = [("Ana", "Garcia"), ("Anna", "Garcia"), ("Ana", "Garcya"), ("Luis", "Perez"), ("Luiz", "Peres")]
    path.write_bytes(
        lines(*(guest(f"G-{i}", first_name=f, last_name=last) for i, (f, last) in enumerate(people)))
    )
    ingest_jsonl(store, settings, path)
    encoder = HashEncoder()

    def embedding_pairs(pairs: CandidatePairs) -> set[tuple[int, int]]:
        mine = (pairs.blockers & int(Blocker.EMBEDDING)) != 0
        return set(zip(pairs.a[mine].tolist(), pairs.b[mine].tolist(), strict=True))

    # first every neighbour, whatever its cosine; then the default floor
    _, wide, _ = run_block(store, settings.model_copy(update={"knn_floor": -1.0}), encoder=encoder)
    narrow_settings = settings
    _, narrow, report = run_block(store, narrow_settings, encoder=encoder)
    assert report.embedded == len(people)  # not kept from the first run
    fresh = Settings(home=tmp_path / "fresh")
    fresh_store = open_store(fresh)
    ingest_jsonl(fresh_store, fresh, path)
    _, expected, _ = run_block(fresh_store, fresh, encoder=encoder)
    assert embedding_pairs(narrow) == embedding_pairs(expected) != embedding_pairs(wide)
    _, again, report = run_block(store, narrow_settings, encoder=encoder)
    assert report.embedded == 0 and embedding_pairs(again) == embedding_pairs(narrow)


def test_block_command_evaluates_against_truth(tmp_path: Path) -> None:
    home = tmp_path / "home"
    info = write_dataset(GeneratorConfig(persons=300, seed=5), tmp_path / "data")
    upt(home, "ingest", info["objects_file"], "-q")
    first = json.loads(upt(home, "block", "--json", "-q").stdout)
    assert first["embedded"] == first["mentions"] > 1000 and first["index_kind"] == "exact"
    result = json.loads(
        upt(home, "block", "--evaluate", "--truth", info["truth_file"], "--json", "-q").stdout
    )
    assert result["recall"] > 0.5 and result["transitive_recall"] > 0.8
    # true pairs that share more than a name are nearly all found; name-only ones are not
    assert 0 < result["true_pairs_beyond_name"] < result["true_pairs"]
    assert result["recall_beyond_name"] > max(result["recall"], 0.95)
    assert 0 < result["candidates_per_mention"] < 20 and result["reduction_ratio"] > 0.99
    assert set(result["blockers"]) >= {"email", "phone", "embedding", "string", "travel"}


def _candidates_by_key(store: Store, settings: Settings) -> dict[tuple[str, str], int]:
    from features.frame import load_mentions

    _, pairs, _ = run_block(store, settings, encoder=HashEncoder())
    with store.reading() as conn:
        key_of = load_mentions(conn, store.domain)["mention_key"]
    a, b = key_of.loc[pairs.a].tolist(), key_of.loc[pairs.b].tolist()
    return {(min(x, y), max(x, y)): int(f) for x, y, f in zip(a, b, pairs.blockers.tolist(), strict=True)}


def test_the_same_data_in_another_row_order_gets_the_same_candidates(tmp_path: Path) -> None:
    """Ties between equally near candidates (a crowd of identical records, more than the
    neighbours and the string pass keep) follow the mention keys, not the ids the store gave in
    order of arrival."""
    info = write_dataset(GeneratorConfig(persons=60, seed=3), tmp_path / "d")
    generated = [x for x in Path(info["objects_file"]).read_bytes().splitlines() if x.strip()]
    crowd = [
        lines(guest(f"C-{i}", first_name="John", last_name="Smith", date_of_birth="1980-01-01")).strip()
        for i in range(40)
    ]
    crowd += [
        lines(guest(f"T-{i}", first_name="Jon", last_name="Smith", date_of_birth="1980-01-01")).strip()
        for i in range(5)
    ]
    rows = generated + crowd
    found = []
    for name, order in (("forward", rows), ("backward", rows[::-1])):
        # the crowd's name and birth-date blocks are over the limit: only the string pass and the
        # embedding neighbours pair it, each keeping a few of many equally near
        settings = Settings(home=tmp_path / name, max_block=30, max_name_block=30)
        store = open_store(settings)
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"\n".join(order) + b"\n")
        ingest_jsonl(store, settings, path)
        found.append(_candidates_by_key(store, settings))
    assert found[0] == found[1]
    # the crowd was larger than what blocking keeps for each of its members
    crowd_pairs = [
        p
        for p in found[0]
        if p[0].startswith("pms/guest_profile/C-") and p[1].startswith("pms/guest_profile/C-")
    ]
    assert 0 < len(crowd_pairs) < 40 * 39 // 2


def _keyed_pairs(store: Store) -> dict[tuple[str, str], int]:
    from features.pairs import load_candidate_table
    from profiles.store.reads import mention_keys_of

    with store.reading() as conn:
        table = load_candidate_table(conn, store.domain)
        keys = mention_keys_of(conn, store.domain, {*table.a.tolist(), *table.b.tolist()})
    out: dict[tuple[str, str], int] = {}
    for a, b, flags in zip(table.a.tolist(), table.b.tolist(), table.blockers.tolist(), strict=True):
        first, second = sorted((keys[a], keys[b]))
        out[(first, second)] = int(flags)
    return out


@pytest.mark.parametrize("last", [0, 6])
def test_blocking_in_parts_gives_the_pairs_of_blocking_everything_at_once(tmp_path: Path, last: int) -> None:
    """Objects ingested and blocked a part at a time end with the candidate pairs (and their
    blockers) of one block of all of them: the embedding lists that later mentions enter, or push
    a member out of, are searched again. Before, an incremental run kept pushed-out pairs and
    missed those of lists entered (4 parts of 150 people: 295 pairs one block of all lacks, 248
    it has missing). `last`: that many objects at the end blocked one at a time (a few new
    mentions search only the lists near them; many search every list again)."""
    info = write_dataset(GeneratorConfig(persons=150, seed=21), tmp_path / "d")
    rows = [r for r in Path(info["objects_file"]).read_bytes().splitlines() if r.strip()]
    whole_settings = Settings(home=tmp_path / "whole")
    whole = open_store(whole_settings)
    ingest_jsonl(whole, whole_settings, Path(info["objects_file"]))
    run_block(whole, whole_settings)
    settings = Settings(home=tmp_path / "parts")
    store = open_store(settings)
    head = len(rows) - last
    size = -(-head // 4)
    parts = [rows[s : s + size] for s in range(0, head, size)] + [[r] for r in rows[head:]]
    queried = []
    for number, part in enumerate(parts):
        path = tmp_path / f"part-{number}.jsonl"
        path.write_bytes(b"\n".join(part))
        ingest_jsonl(store, settings, path)
        queried.append(run_block(store, settings)[2].queried)
    got, want = _keyed_pairs(store), _keyed_pairs(whole)
    assert set(got) == set(want), (len(set(got) - set(want)), len(set(want) - set(got)))
    assert got == want
    if last:  # the one-object parts searched a few lists, not all of them
        assert max(queried[-last:]) < len(want) / 20
