"""The online core against the batch: objects resolved one at a time give the profiles one batch
run gives; a person matched without writing; a record joining, creating and keeping profiles;
re-delivery; the champion swapped when its alias moves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from features.blocking import Blocker
from pipelines.block import run_block
from pipelines.champion import ChampionCache
from pipelines.ingest import ingest_path
from pipelines.online import OnlineResolver
from pipelines.resolve import run_resolve
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.contract import Person, parse_line
from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.decisions import set_info
from profiles.store.profiles_io import assignment_rows
from profiles.store.reads import mention_ids, store_id, store_stats
from profiles.store.schema import (
    candidate_pairs,
    match_decisions,
    metadata,
    profile_members,
    revisit_queue,
)
from tests.pipelines.helpers import label_with_oracle
from training.metrics import cluster_scores
from training.registry import promote
from training.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A generated set, and a batch store of it: blocked, 40 oracle labels, a champion, resolved.
    The online store shares its store id (and so its registered model)."""
    root = tmp_path_factory.mktemp("online")
    info = write_dataset(GeneratorConfig(persons=150, seed=5), root / "data")
    mlruns = str(root / "mlruns")
    batch_settings = Settings(home=root / "batch", mlflow_tracking_uri=mlruns, ingest_batch_size=500)
    batch = open_store(batch_settings)
    ingest_path(batch, batch_settings, Path(info["objects_file"]))
    run_block(batch, batch_settings)
    label_with_oracle(batch, info["truth_file"], 40)
    train(batch, batch_settings, "auto")
    run_resolve(batch, batch_settings)
    with batch.transaction() as conn:
        shared_id = store_id(conn)
    yield {
        "info": info,
        "batch": batch,
        "batch_settings": batch_settings,
        "mlruns": mlruns,
        "id": shared_id,
        "root": root,
    }
    batch.engine.dispose()


def _online_store(trained: dict[str, Any], name: str) -> tuple[Store, Settings]:
    settings = Settings(home=trained["root"] / name, mlflow_tracking_uri=trained["mlruns"])
    store = open_store(settings)
    with store.transaction() as conn:
        set_info(conn, "store_id", trained["id"])
    return store, settings


def _objects(trained: dict[str, Any]) -> list[Any]:
    out = []
    for raw in Path(trained["info"]["objects_file"]).read_bytes().splitlines():
        try:
            out.append(parse_line(raw, 2_000_000))
        except Exception:  # the generated set's deliberately broken lines
            continue
    return out


def _assignment(store: Store) -> dict[str, str]:
    with store.reading() as conn:
        return dict(assignment_rows(conn, store.domain))


@pytest.mark.slow
def test_objects_resolved_one_at_a_time_agree_with_one_batch_run(trained: dict[str, Any]) -> None:
    store, settings = _online_store(trained, "one-at-a-time")
    resolver = OnlineResolver(store, settings)
    objects = _objects(trained)
    # the first records find no candidate and need no model; the store then grows record by record
    for obj in objects:
        resolver.resolve_objects([obj])
    online, batch = _assignment(store), _assignment(trained["batch"])
    assert set(online) == set(batch)
    agreement = cluster_scores(batch, online)  # the batch's profiles as the truth
    assert agreement["f1"] >= 0.99, agreement
    # a batch run on the online store catches up with what blocking finds later and agrees too
    run_resolve(store, settings)
    after = cluster_scores(batch, _assignment(store))
    assert after["f1"] >= agreement["f1"] - 0.002, (agreement, after)


def _guest(object_id: str, **person: Any) -> Any:
    return parse_line(_guest_line(object_id, **person), 2_000_000)


def _guest_line(object_id: str, **person: Any) -> bytes:
    return json.dumps(
        {
            "object_type": "guest_profile",
            "source": "web-signup",
            "id": object_id,
            "modified_at": "2026-01-01T00:00:00Z",
            "data": {"traveller": person},
        }
    ).encode()


def _row_counts(store: Store) -> dict[str, int]:
    with store.reading() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def _someone(store: Store) -> dict[str, Any]:
    """A resolved mention with an email and a name, and its profile."""
    from features.frame import load_mentions

    with store.reading() as conn:
        frame = load_mentions(conn, store.domain)
        assigned = dict(assignment_rows(conn, store.domain))
    row = frame[
        (frame["emails"].map(len) > 0) & (frame["first_name"] != "") & (frame["last_name"] != "")
    ].iloc[0]
    return {
        "key": row["mention_key"],
        "first": row["first_name"],
        "last": row["last_name"],
        "email": row["emails"][0],
        "profile": assigned[row["mention_key"]],
    }


def test_match_scores_a_person_and_writes_nothing(trained: dict[str, Any]) -> None:
    batch, settings = trained["batch"], trained["batch_settings"]
    guest = _someone(batch)
    resolver = OnlineResolver(batch, settings)
    before = _row_counts(batch)
    result = resolver.match(
        Person(
            first_name=guest["first"].title(),
            last_name=guest["last"].title(),
            emails=[{"address": guest["email"]}],
        )
    )
    assert _row_counts(batch) == before
    assert result.decision == "merge" and result.profile_id == guest["profile"]
    best = result.candidates[0]
    assert best.probability >= result.candidates[-1].probability
    assert best.profile_id == guest["profile"] and ("email" in best.blockers or "name" in best.blockers)
    assert best.rule or best.explanation  # why: the rule that fired, or the features behind the score
    nobody = resolver.match(Person(first_name="Quintessa", last_name="Vandersloot-Okafor"))
    assert nobody.decision == "no_match" and nobody.profile_id is None


def test_a_record_joins_creates_keeps_and_is_idempotent(trained: dict[str, Any]) -> None:
    store, settings = _online_store(trained, "behaviour")
    resolver = OnlineResolver(store, settings)
    for obj in _objects(trained)[:120]:
        resolver.resolve_objects([obj])
    guest = _someone(store)
    same = _guest(
        "S-1", first_name=guest["first"], last_name=guest["last"], emails=[{"address": guest["email"]}]
    )
    (outcome,) = resolver.resolve_objects([same])
    (mention,) = outcome.mentions
    assert outcome.status == "inserted"
    assert mention.profile_id == _assignment(store)[guest["key"]]
    assert mention.action in ("joined", "merged_profiles") and mention.decided_by
    with store.reading() as conn:
        recorded = conn.execute(
            select(func.count())
            .select_from(match_decisions)
            .where(match_decisions.c.mention_b == mention.mention_key)
        ).scalar_one()
    assert recorded >= 1
    again = resolver.resolve_objects([same])
    assert again[0].status == "unchanged" and again[0].mentions[0].action == "unchanged"
    stranger = resolver.resolve_objects(
        [_guest("S-2", first_name="Quintessa", last_name="Vandersloot-Okafor")]
    )
    assert stranger[0].mentions[0].action == "new_profile"
    # a newer version of the record, now someone else: it leaves the guest's profile
    moved = _guest("S-1", first_name="Quintessa", last_name="Vandersloot-Okafor")
    moved = moved.model_copy(update={"modified_at": moved.modified_at.replace(year=2027)})
    (changed,) = resolver.resolve_objects([moved])
    assert changed.status == "replaced"
    assert changed.mentions[0].profile_id != _assignment(store)[guest["key"]]
    with store.reading() as conn:
        marks = dict(
            conn.execute(select(profile_members.c.mention_pk, profile_members.c.resolved_hash)).all()
        )
    assert any(str(h).endswith(":online") for h in marks.values())


def _partition(assignment: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for key, profile in assignment.items():
        groups.setdefault(profile, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def test_a_contact_that_becomes_shared_takes_back_the_merges_that_rested_on_it(
    trained: dict[str, Any],
) -> None:
    store, settings = _online_store(trained, "shared-later")
    resolver = OnlineResolver(store, settings)
    home = [{"address": "casa.ferreira.qx@example.org"}]
    ana = [f"web-signup/guest_profile/F-{i}#traveller" for i in (1, 2)]
    for i in (1, 2):  # one guest twice: one name, one email, merged by a rule
        resolver.resolve_objects([_guest(f"F-{i}", first_name="Ana", last_name="Ferreira", emails=home)])
    assert len({_assignment(store)[k] for k in ana}) == 1
    (luis,) = resolver.resolve_objects([_guest("F-3", first_name="Luis", last_name="Ferreira", emails=home)])
    assert luis.mentions[0].revisited == []  # two people on the address: still personal
    (marta,) = resolver.resolve_objects(
        [_guest("F-4", first_name="Marta", last_name="Ferreira", emails=home)]
    )
    # a third person on it: a household's address, which proves nothing about one of them; the
    # holders a merge joined are decided again (Luis, joined to nobody, is left alone)
    assert set(marta.mentions[0].revisited) == set(ana)
    online = _assignment(store)
    assert len({online[k] for k in ana}) == 2
    # what one batch run over the same store decides
    run_resolve(store, settings, full=True)
    assert _partition(_assignment(store)) == _partition(online)


def _queued(store: Store) -> list[int]:
    with store.reading() as conn:
        return conn.execute(select(revisit_queue.c.mention_pk).order_by(revisit_queue.c.id)).scalars().all()


@pytest.mark.parametrize("catch_up", ["revisit_pending", "upt resolve"])
def test_revisits_left_queued_are_caught_up_later_as_inline(trained: dict[str, Any], catch_up: str) -> None:
    """An object answered before the mentions it changed are resolved again: they wait in the
    store's revisit queue, and `revisit_pending` or an incremental `upt resolve` gives the
    profiles the inline revisit gives."""
    home = [{"address": "casa.ferreira.qx@example.org"}]
    ana = [f"web-signup/guest_profile/F-{i}#traveller" for i in (1, 2)]
    guests = [
        _guest(f"F-{i}", first_name=first, last_name="Ferreira", emails=home)
        for i, first in ((1, "Ana"), (2, "Ana"), (3, "Luis"), (4, "Marta"))
    ]
    inline_store, inline_settings = _online_store(trained, f"queue-inline-{catch_up}")
    inline = OnlineResolver(inline_store, inline_settings)
    for guest in guests:
        inline.resolve_objects([guest])
    assert _queued(inline_store) == []  # resolved again at once, and taken off
    store, settings = _online_store(trained, f"queue-later-{catch_up}")
    resolver = OnlineResolver(store, settings)
    for guest in guests[:3]:
        resolver.resolve_objects([guest], revisit=False)
    (marta,) = resolver.resolve_objects([guests[3]], revisit=False)
    assert marta.mentions[0].revisited == [] and set(marta.mentions[0].queued) == set(ana)
    assert len({_assignment(store)[k] for k in ana}) == 1  # still merged on the household address
    with store.reading() as conn:
        ana_pks = set(mention_ids(conn, store.domain, ana).values())
    assert set(_queued(store)) == ana_pks
    with store.reading() as conn:
        assert store_stats(conn, store.domain)["revisits_waiting"] == 2
    if catch_up == "revisit_pending":
        done = resolver.revisit_pending()
        assert sorted(o.mention_key for o in done) == sorted(ana)
        assert resolver.revisit_pending() == []
    else:
        assert run_resolve(store, settings).revisits_done == 2
    assert _queued(store) == []
    assert _partition(_assignment(store)) == _partition(_assignment(inline_store))
    assert len({_assignment(store)[k] for k in ana}) == 2


def test_a_queued_mention_that_is_erased_leaves_the_queue(trained: dict[str, Any]) -> None:
    from pipelines.privacy import erase
    from profiles.store.reads import mention_keys_of

    home = [{"address": "casa.ferreira.qx@example.org"}]
    store, settings = _online_store(trained, "queue-erased")
    resolver = OnlineResolver(store, settings)
    for i, first in ((1, "Ana"), (2, "Ana"), (3, "Luis"), (4, "Marta")):
        resolver.resolve_objects(
            [_guest(f"G-{i}", first_name=first, last_name="Ferreira", emails=home)], revisit=False
        )
    waiting = _queued(store)
    assert len(waiting) == 2
    with store.reading() as conn:
        first = mention_keys_of(conn, store.domain, waiting[:1])[waiting[0]]
    erase(store, settings, "test", mention_keys=[first])
    assert _queued(store) == waiting[1:]


def test_a_name_block_grown_too_large_is_decided_again_for_its_members(trained: dict[str, Any]) -> None:
    store, _ = _online_store(trained, "giant-name")
    settings = Settings(
        home=trained["root"] / "giant-name", mlflow_tracking_uri=trained["mlruns"], max_name_block=3
    )
    resolver = OnlineResolver(store, settings)
    keys = [f"web-signup/guest_profile/N-{i}#traveller" for i in range(5)]
    revisited = []
    for i in range(5):  # one guest's records: a common name and one email
        if i == 3:  # as if the name alone had proposed the pairs so far (no other blocker did)
            with store.transaction() as conn:
                conn.execute(update(candidate_pairs).values(blockers=int(Blocker.NAME)))
        (outcome,) = resolver.resolve_objects(
            [
                _guest(
                    f"N-{i}",
                    first_name="Pedro",
                    last_name="Alves",
                    emails=[{"address": "p.alves.qx@example.org"}],
                )
            ]
        )
        revisited.append(outcome.mentions[0].revisited)
        if i == 3:
            with store.reading() as conn:
                flags = conn.execute(select(candidate_pairs.c.blockers)).scalars().all()
    # the fourth holder of the name makes its block generic: the batch proposes no pair by it, so
    # the pairs the name alone proposed go and the three they merged are decided again (their
    # lookups store again what other blockers propose: the email); the fifth finds the block
    # generic already
    assert revisited == [[], [], [], keys[:3], []]
    assert flags and all(f & ~Blocker.NAME for f in flags)
    assert len(set(_assignment(store).values())) == 1


def test_an_incremental_batch_run_takes_them_back_as_a_full_run_does(trained: dict[str, Any]) -> None:
    settings = Settings(home=trained["root"] / "shared-later-batch", mlflow_tracking_uri=trained["mlruns"])
    store, _ = _online_store(trained, "shared-later-batch")
    home = [{"address": "casa.ferreira.qx@example.org"}]
    people = [("F-1", "Ana"), ("F-2", "Ana"), ("F-3", "Luis"), ("F-4", "Marta")]
    files = []
    for part in (people[:3], people[3:]):
        files.append(trained["root"] / f"ferreira-{len(files)}.jsonl")
        files[-1].write_bytes(
            b"\n".join(_guest_line(i, first_name=f, last_name="Ferreira", emails=home) for i, f in part)
        )
    ana = [f"web-signup/guest_profile/F-{i}#traveller" for i in (1, 2)]
    ingest_path(store, settings, files[0])
    run_resolve(store, settings)
    assert len({_assignment(store)[k] for k in ana}) == 1
    ingest_path(store, settings, files[1])
    report = run_resolve(store, settings)
    assert report.mode == "incremental" and report.dirty_mentions == 4  # Marta, and the other holders
    incremental = _assignment(store)
    assert len({incremental[k] for k in ana}) == 2
    run_resolve(store, settings, full=True)
    assert _partition(_assignment(store)) == _partition(incremental)


def test_a_booker_written_later_brings_the_family_trip_home_and_a_second_home_takes_it_back(
    trained: dict[str, Any],
) -> None:
    from tests.pipelines.test_booked_from_home import ELSEWHERE
    from tests.pipelines.test_booked_from_home import _objects as family

    by_id = {str(o["id"]): json.dumps(o).encode() for o in family()}
    order = ["HB1", "G2", "G3", "G1"]  # the stay Jean booked before anyone's address is known
    marie = ["pms/hotel_booking/HB1#guests[1]", "pms/guest_profile/G2#traveller"]
    online, _ = _online_store(trained, "booker-later")
    resolver = OnlineResolver(
        online, Settings(home=trained["root"] / "booker-later", mlflow_tracking_uri=trained["mlruns"])
    )
    outcomes = [resolver.resolve_objects([parse_line(by_id[i], 2_000_000)])[0] for i in order[:3]]
    assert len({_assignment(online)[k] for k in marie}) == 2  # no booker's home to compare with
    outcomes += resolver.resolve_objects([parse_line(by_id["G1"], 2_000_000)])
    # Jean's own record locates the stay's contact at his home, where Marie lives: online, her
    # stay waits for the next `upt resolve` (deciding a booking's travellers again on every
    # booker's first address cost too much time), which decides it again as booked from home
    assert len({_assignment(online)[k] for k in marie}) == 2
    settings = Settings(home=trained["root"] / "booker-later", mlflow_tracking_uri=trained["mlruns"])
    run_resolve(online, settings)
    together = _assignment(online)
    assert len({together[k] for k in marie}) == 1
    run_resolve(online, settings, full=True)
    assert _partition(_assignment(online)) == _partition(together)
    # the batch, incrementally: the same
    batch, _ = _online_store(trained, "booker-later-batch")
    settings = Settings(home=trained["root"] / "booker-later-batch", mlflow_tracking_uri=trained["mlruns"])
    for part in (order[:3], order[3:]):
        path = trained["root"] / f"booker-later-{len(part)}.jsonl"
        path.write_bytes(b"\n".join(by_id[i] for i in part))
        ingest_path(batch, settings, path)
        run_resolve(batch, settings)
    assert _partition(_assignment(batch)) == _partition(together)
    # a second home for the contact (Jean writes another address): it locates nobody now, and
    # what it merged is decided again
    moved = json.loads(by_id["G1"])
    moved["id"], moved["data"]["traveller"]["addresses"] = "G4", [ELSEWHERE]
    (later,) = resolver.resolve_objects([parse_line(json.dumps(moved).encode(), 2_000_000)])
    assert marie[0] in later.mentions[0].revisited
    online_now = _assignment(online)
    run_resolve(
        online,
        Settings(home=trained["root"] / "booker-later", mlflow_tracking_uri=trained["mlruns"]),
        full=True,
    )
    assert _partition(_assignment(online)) == _partition(online_now)


def test_the_champion_is_swapped_when_its_alias_moves(trained: dict[str, Any]) -> None:
    batch, settings = trained["batch"], trained["batch_settings"]
    now = [0.0]
    cache = ChampionCache(batch, settings, refresh_seconds=10.0, clock=lambda: now[0])
    first = cache.get()
    assert cache.get() is first and cache.loads == 1
    second = train(batch, settings, "logistic")
    promote(batch, settings, second.version, "tester", force=True)
    assert cache.get() is first  # not asked again before refresh_seconds
    now[0] = 11.0
    swapped = cache.get()
    assert swapped.version == second.version != first.version and cache.loads == 2
    promote(batch, settings, first.version, "tester", force=True)
