"""One mention's candidates, found by index probes, are the pairs batch blocking proposes for it:
on the demo set (`make demo`'s 2,000 generated people), every batch pair is found by the lookup
of one of its two mentions, and every pair a lookup finds is a batch pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from features.blocking import Blocker
from features.frame import load_interactions, load_mentions
from features.pairs import load_candidate_table
from pipelines.block import run_block
from pipelines.candidates import UNSTORED, lookup
from pipelines.ingest import ingest_path
from pipelines.live_index import LiveIndex, _distinct_rows
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import Store, open_store


def _all_lookups(
    store: Store, settings: Settings
) -> tuple[dict[tuple[int, int], int], dict[str, float], dict[int, set[tuple[int, int]]]]:
    """Every stored mention's lookup, as {(a, b): blockers}; the mean seconds per part; and each
    mention's own pairs."""
    live = LiveIndex(store, settings)
    found: dict[tuple[int, int], int] = {}
    seconds: dict[str, float] = {}
    own: dict[int, set[tuple[int, int]]] = {}
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain)
        interactions = load_interactions(conn, store.domain)
        texts = dict(zip(frame["mention_pk"], live_texts(live, frame), strict=True))
        by_mention = dict(tuple(interactions.groupby("mention_pk")))
        empty = interactions.iloc[0:0]
        for pk in frame["mention_pk"].tolist():
            one = frame.loc[[pk]]
            result = lookup(conn, store.domain, settings, one, by_mention.get(pk, empty), live, texts[pk])
            own[pk] = set(zip(result.pairs.a.tolist(), result.pairs.b.tolist(), strict=True))
            for a, b, flags in zip(result.pairs.a, result.pairs.b, result.pairs.blockers, strict=True):
                found[(int(a), int(b))] = found.get((int(a), int(b)), 0) | int(flags)
            for part, s in result.seconds.items():
                seconds[part] = seconds.get(part, 0.0) + s / len(frame)
    return found, seconds, own


def live_texts(live: LiveIndex, frame) -> list[str]:  # type: ignore[no-untyped-def]
    from features.embedding.text import record_texts

    return record_texts(frame, live.settings.text_template)


def _compare(
    store: Store, settings: Settings, most_short: float = 0.0
) -> tuple[dict[tuple[int, int], int], dict[str, float]]:
    """Batch and lookups propose the same pairs, each pair from the lookup of both its mentions:
    all but `most_short` of the mentions find every batch pair they are in (a mention taken as
    the k-th nearest by one past its `REVERSE_REACH` nearest is not asked)."""
    with store.reading() as conn:
        table = load_candidate_table(conn, store.domain)
    batch = {(int(a), int(b)): int(f) for a, b, f in zip(table.a, table.b, table.blockers, strict=True)}
    online, seconds, own = _all_lookups(store, settings)
    # each mention's lookup finds every batch pair it is in, the pairs of the other mentions'
    # lists that hold it too
    touching: dict[int, set[tuple[int, int]]] = {pk: set() for pk in own}
    for a, b in batch:
        touching[a].add((a, b))
        touching[b].add((a, b))
    short = {pk: sorted(touching[pk] - own[pk]) for pk in own if touching[pk] - own[pk]}
    assert len(short) <= most_short * len(own), (
        len(short),
        [(pk, p[:3], [Blocker.names_of(batch[q]) for q in p[:3]]) for pk, p in list(short.items())[:5]],
    )
    only_batch = sorted(set(batch) - set(online))
    only_online = sorted(set(online) - set(batch))
    assert not only_batch and not only_online, (
        f"{len(only_batch)} batch pairs no lookup finds, e.g. "
        f"{[(p, Blocker.names_of(batch[p])) for p in only_batch[:5]]}; "
        f"{len(only_online)} lookup pairs the batch lacks, e.g. "
        f"{[(p, Blocker.names_of(online[p])) for p in only_online[:5]]}"
    )
    # and each pair was proposed by the same blockers
    differ = [p for p in batch if batch[p] != online[p]]
    assert not differ, [(p, Blocker.names_of(batch[p]), Blocker.names_of(online[p])) for p in differ[:5]]
    return batch, seconds


def _small_store(store: Store, settings: Settings, tmp_path: Path) -> None:
    info = write_dataset(GeneratorConfig(persons=200, seed=12), tmp_path / "d")
    ingest_path(store, settings, Path(info["objects_file"]))
    run_block(store, settings)
    pairs, _ = _compare(store, settings)
    assert len(pairs) > 500
    # the homes' blocks are followed online too: residents, their contacts, the trips booked
    # from those (`pipelines.candidates.home_blocks`)
    assert sum(1 for flags in pairs.values() if flags & Blocker.HOME) > 50


def test_a_small_store_finds_online_what_the_batch_proposes(tmp_path: Path, settings: Settings) -> None:
    _small_store(open_store(settings), settings, tmp_path)


@pytest.mark.postgres
def test_a_small_postgres_store_finds_online_what_the_batch_proposes(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    _small_store(pg_store, settings, tmp_path)


@pytest.mark.slow
def test_the_demo_set_finds_online_what_the_batch_proposes(tmp_path: Path, settings: Settings) -> None:
    info = write_dataset(GeneratorConfig(persons=2000, seed=7, bad_line_rate=0.005), tmp_path / "demo")
    settings = settings.model_copy(update={"ingest_batch_size": 1000})
    store = open_store(settings)
    ingest_path(store, settings, Path(info["objects_file"]))
    run_block(store, settings)
    # 71 of its 10,894 mentions are some mention's k-th nearest from past their 512 nearest
    pairs, _ = _compare(store, settings, most_short=0.01)
    assert len(pairs) > 10_000


def test_a_mention_looked_up_before_it_is_stored_finds_what_it_finds_once_stored(
    tmp_path: Path, settings: Settings
) -> None:
    """A mention not written yet goes by an id above every stored one: its lookup (what `match`
    does) equals its lookup once written, when it is indeed the newest."""
    from pipelines.online import _no_interactions
    from profiles.contract import parse_line

    info = write_dataset(GeneratorConfig(persons=120, seed=3), tmp_path / "d")
    lines = Path(info["objects_file"]).read_bytes().splitlines()
    last = next(parse_line(x, 2_000_000) for x in reversed(lines) if b'"guest_profile"' in x)
    store, mention, one, live = _blocked_without(lines, last, settings, tmp_path / "first.jsonl")
    with store.reading() as conn:
        before = lookup(conn, store.domain, settings, one, _no_interactions(), live, live_texts(live, one)[0])
    path = tmp_path / "last.jsonl"
    path.write_bytes(last.model_dump_json().encode())
    ingest_path(store, settings, path)
    run_block(store, settings)
    live = LiveIndex(store, settings)
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain)
        pk = int(frame["mention_pk"].max())
        stored = frame.loc[[pk]]
        after = lookup(
            conn,
            store.domain,
            settings,
            stored,
            load_interactions(conn, store.domain, [pk]),
            live,
            live_texts(live, stored)[0],
        )
    assert stored["mention_key"].iloc[0] == mention.key
    as_stored = {
        (int(a), int(b)) if b != UNSTORED else (int(a), pk)
        for a, b in zip(before.pairs.a, before.pairs.b, strict=True)
    }
    assert as_stored == set(zip(after.pairs.a.tolist(), after.pairs.b.tolist(), strict=True))
    assert len(as_stored) > 0


def _check_windows(store: Store, settings: Settings, tmp_path: Path) -> None:
    """Each mention's window of every string-pass block, read from the store around it, holds the
    rows the batch pass compares it with (`window_bounds` over the block in its order), also where
    blocks are longer than the window and the mention sits near either end."""
    from features.blocking.keys import STRING_BLOCKS
    from features.blocking.strings import window_bounds
    from pipelines.candidates import _slabs
    from profiles.store.keys import stored_keys

    info = write_dataset(GeneratorConfig(persons=150, seed=5), tmp_path / "d")
    ingest_path(store, settings, Path(info["objects_file"]))
    with store.reading() as conn:
        keys = stored_keys(conn, store.domain)
        keys = keys[keys["kind"].isin([int(k) for k in STRING_BLOCKS])]
        blocks = {
            (int(kind), key): sorted(
                zip(
                    group["name"].tolist(),
                    group["order_key"].astype(int).tolist(),
                    group["mention_pk"].astype(int).tolist(),
                    strict=True,
                )
            )
            for (kind, key), group in keys.groupby(["kind", "key"])
        }
        assert max(len(rows) for rows in blocks.values()) > 30  # longer than the windows below
        for window in (6, 7):
            for (kind, key), rows in blocks.items():
                spots = [(kind, key, name, order, pk) for name, order, pk in rows]
                found = _slabs(conn, store.domain, spots, window)
                for position, ((_, _, pk), (pks, orders, names, at)) in enumerate(
                    zip(rows, found, strict=True)
                ):
                    slab = list(zip(names, orders, pks, strict=True))
                    assert slab == rows[max(0, position - window) : position + window + 1]
                    assert slab[at][2] == pk
                    start, end = window_bounds(at, len(slab), window)
                    own = [r for r in slab[start:end] if r[2] != pk]
                    start, end = window_bounds(position, len(rows), window)
                    assert own == [r for r in rows[start:end] if r[2] != pk], (kind, key, position, window)


def test_string_pass_windows_read_from_the_store_are_the_batch_windows(
    tmp_path: Path, settings: Settings
) -> None:
    _check_windows(open_store(settings), settings, tmp_path)


@pytest.mark.postgres
def test_string_pass_windows_read_from_postgres_are_the_batch_windows(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    _check_windows(pg_store, settings, tmp_path)


def test_the_live_index_holds_every_order_key_and_reads_again_an_id_whose_vector_is_added(
    tmp_path: Path, settings: Settings
) -> None:
    """A crowd's neighbours are ranked by their order keys: every stored mention's is read when the
    index starts, and read again only for an id whose vector is added anew (an id the store
    reused)."""
    from pipelines.candidates import order_keys_in_store

    info = write_dataset(GeneratorConfig(persons=40, seed=5), tmp_path / "d")
    store = open_store(settings)
    ingest_path(store, settings, Path(info["objects_file"]))
    run_block(store, settings)
    live = LiveIndex(store, settings)
    asked: list[list[int]] = []
    with store.reading() as conn:
        from_store = order_keys_in_store(conn, store.domain)

        def counted(ids):  # type: ignore[no-untyped-def]
            asked.append(sorted(ids.ravel().tolist()))
            return from_store(ids)

        ties = live._cached(counted)
        ids = live.index.ids()[:6]
        first = ties(np.array([ids[:4], [ids[4], ids[5], -1, ids[0]]]))
        again = ties(ids[2:6][None, :])
        assert (first == from_store(np.array([ids[:4], [ids[4], ids[5], -1, ids[0]]]))).all()
        assert (again == from_store(ids[2:6][None, :])).all()
        assert asked == []  # all held since the start
        live.add(int(ids[3]), live.vectors_of(np.array([ids[3]]))[0])
        ties(ids[2:5][None, :])
        assert asked[-1] == [int(ids[3])]


def test_an_arrival_finds_the_pairs_a_batch_of_all_gives_it_and_those_it_takes_from_others(
    tmp_path: Path,
) -> None:
    """A mention looked up before it is stored finds exactly the pairs one batch blocking of
    every mention gives it, the other mentions' lists it enters among them; and the pairs it
    pushes out of lists it enters (`Found.pushed_out`) are those that batch no longer proposes by
    that blocker. (An incremental `upt block` keeps such pairs: it searches only new mentions.)"""
    from features.embedding.text import record_texts
    from pipelines.online import _no_interactions
    from profiles.contract import parse_line
    from profiles.store.reads import mention_keys_of

    bits = (int(Blocker.EMBEDDING), int(Blocker.STRING))

    def keyed(store: Store) -> dict[tuple[str, str], int]:
        with store.reading() as conn:
            table = load_candidate_table(conn, store.domain)
            keys = mention_keys_of(conn, store.domain, {*table.a.tolist(), *table.b.tolist()})
        return {
            tuple(sorted((keys[int(a)], keys[int(b)]))): int(f)  # type: ignore[misc]
            for a, b, f in zip(table.a, table.b, table.blockers, strict=True)
        }

    info = write_dataset(GeneratorConfig(persons=120, seed=3), tmp_path / "d")
    lines = Path(info["objects_file"]).read_bytes().splitlines()
    whole_settings = Settings(home=tmp_path / "whole")
    whole_store = open_store(whole_settings)
    ingest_path(whole_store, whole_settings, Path(info["objects_file"]))
    run_block(whole_store, whole_settings)
    whole = keyed(whole_store)
    guests = [parse_line(x, 2_000_000) for x in lines if b'"guest_profile"' in x][::-1][:4]
    pushed_any = 0
    for last in guests:
        settings = Settings(home=tmp_path / last.id)
        store, mention, one, live = _blocked_without(lines, last, settings, tmp_path / f"{last.id}.jsonl")
        text = record_texts(one, settings.text_template)[0]
        with store.reading() as conn:
            found = lookup(conn, store.domain, settings, one, _no_interactions(), live, text)
            # asked without what it pushes out (a `match`), it finds the same pairs
            quick = lookup(conn, store.domain, settings, one, _no_interactions(), live, text, pushes=False)
            assert quick.pushed_out == []
            assert quick.pairs.a.tolist() == found.pairs.a.tolist()
            assert quick.pairs.b.tolist() == found.pairs.b.tolist()
            assert quick.pairs.blockers.tolist() == found.pairs.blockers.tolist()
            ids = {*found.pairs.a.tolist(), *found.pairs.b.tolist()} | {
                x for p in found.pushed_out for x in p[:2]
            }
            keys = mention_keys_of(conn, store.domain, ids - {UNSTORED})
        keys[UNSTORED] = mention.key
        had = keyed(store)
        got = {
            tuple(sorted((keys[a], keys[b])))
            for a, b in zip(found.pairs.a.tolist(), found.pairs.b.tolist(), strict=True)
        }
        assert got == {p for p in whole if mention.key in p}, last.id
        pushed = {(*sorted((keys[a], keys[b])), bit) for a, b, bit in found.pushed_out}
        gone = {(*p, bit) for p, f in had.items() for bit in bits if f & bit and not whole.get(p, 0) & bit}
        assert pushed == gone, last.id
        pushed_any += len(pushed)
    assert pushed_any > 0


def test_upt_block_saves_each_list_s_reach(tmp_path: Path, settings: Settings) -> None:
    """The reach `upt block` saves for each mention is the one the live index reads itself, also
    after more mentions arrive and are blocked: the lists they enter are searched again and their
    reach saved anew (the others keep theirs)."""
    from features.embedding.index import load_reach
    from pipelines.candidates import order_keys_in_store

    info = write_dataset(GeneratorConfig(persons=150, seed=9), tmp_path / "d")
    lines = Path(info["objects_file"]).read_bytes().splitlines()
    half = tmp_path / "half.jsonl"
    half.write_bytes(b"\n".join(lines[: len(lines) // 2]))
    rest = tmp_path / "rest.jsonl"
    rest.write_bytes(b"\n".join(lines[len(lines) // 2 :]))
    store = open_store(settings)
    path = settings.reach_path(store.domain, settings.encoder)

    def true_reach(ids: np.ndarray) -> np.ndarray:
        live = LiveIndex(store, settings)
        live._reach[:] = np.nan  # read every list again
        with store.reading() as conn:
            ties = live._cached(order_keys_in_store(conn, store.domain))
            return live._radii(ids, settings.knn + 1, settings.knn_floor, ties)[0]

    ingest_path(store, settings, half)
    run_block(store, settings)
    first_ids, first = load_reach(path)
    assert len(first_ids) > 100
    assert np.allclose(first, true_reach(first_ids))
    ingest_path(store, settings, rest)
    run_block(store, settings)
    ids, reach = load_reach(path)
    truth = true_reach(ids)
    assert set(first_ids.tolist()) <= set(ids.tolist())
    assert (~np.isin(ids, first_ids)).any()
    # the lists the new mentions entered were searched again (`upt block` in parts): exact
    assert np.allclose(reach, truth)


def _blocked_without(
    lines: list[bytes], last: Any, settings: Settings, path: Path
) -> tuple[Store, Any, Any, LiveIndex]:
    """A store of every object of `lines` but `last` (a guest profile), ingested and blocked; the
    last one's mention, its frame as not stored yet, and the store's live index."""
    from features.records import object_record
    from pipelines.online import _frame_of_record

    path.write_bytes(b"\n".join(x for x in lines if x.strip() and b'"' + last.id.encode() + b'"' not in x))
    store = open_store(settings)
    ingest_path(store, settings, path)
    run_block(store, settings)
    (mention,) = object_record(last).mentions
    return (
        store,
        mention,
        _frame_of_record(UNSTORED, mention.key, last.source, mention.normalized),
        LiveIndex(store, settings),
    )


@given(st.lists(st.integers(0, 4), min_size=0, max_size=40), st.integers(1, 6))
@hypothesis_settings(max_examples=60, deadline=None)
def test_a_crowd_s_vectors_are_searched_once_per_distinct_vector(picks: list[int], width: int) -> None:
    """`_distinct_lists` searches each distinct vector once: the rows it keeps are distinct, and
    every row is one of them, as `np.unique(axis=0)` tells them apart."""
    palette = np.random.default_rng(width).random((5, width)).astype(np.float32)
    vectors = palette[np.array(picks, np.intp)].reshape(len(picks), width)
    first, row_of = _distinct_rows(vectors)
    assert np.array_equal(vectors[first][row_of], vectors)
    assert len(first) == len(np.unique(vectors, axis=0))
