from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from pipelines.ingest import ingest_jsonl
from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.reads import list_rejections, store_stats
from profiles.store.schema import mentions, metadata, objects
from profiles.store.vectors import replace_pairs, stored_pairs
from tests.pipelines.helpers import guest, lines


def test_migrations_match_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_sqlite_store_runs_in_wal_mode(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"


def test_domains_never_see_each_other(settings: Settings, tmp_path: Path) -> None:
    brand_a = open_store(settings.model_copy(update={"domain": "brand-a"}))
    brand_b = brand_a.with_domain("brand-b")
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(guest("G-1"), guest("G-2"), b"bad line"))
    ingest_jsonl(brand_a, settings, path)
    path.write_bytes(lines(guest("G-1", first_name="Other")))
    result = ingest_jsonl(brand_b, settings, path)
    assert result.inserted == 1  # the same key in another domain is another object
    with brand_a.reading() as conn:
        a_stats, a_errors = store_stats(conn, "brand-a"), list_rejections(conn, "brand-a")
        b_stats, b_errors = store_stats(conn, "brand-b"), list_rejections(conn, "brand-b")
        b_objects = (
            conn.execute(select(objects.c.object_id).where(objects.c.domain == "brand-b")).scalars().all()
        )
    assert (a_stats["objects"], a_stats["mentions"], a_stats["rejected"]) == (2, 2, 1)
    assert (b_stats["objects"], b_stats["mentions"], b_stats["rejected"]) == (1, 1, 0)
    assert len(a_errors) == 1 and b_errors == [] and b_objects == ["G-1"]


def test_a_failing_batch_leaves_nothing_half_written(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import profiles.store.writes as writes

    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(*(guest(f"G-{i}") for i in range(120))))
    calls = {"n": 0}
    real = writes.write_rejections

    def crash_on_third_batch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(writes, "write_rejections", crash_on_third_batch)
    with pytest.raises(RuntimeError):
        ingest_jsonl(store, settings, path)
    with store.reading() as conn:
        stats = store_stats(conn, store.domain)
    assert (stats["objects"], stats["mentions"]) == (
        100,
        100,
    )  # two whole batches of 50, nothing of the third


def test_a_writer_waits_a_bounded_time_for_sqlites_single_write_lock(settings: Settings) -> None:
    """Writing transactions take the write lock at their start; another writer waits at most
    `write_wait_seconds`, then gets store_busy (exit 5), never a half-done write."""
    import threading
    import time

    from profiles.errors import StoreBusy

    quick = settings.model_copy(update={"write_wait_seconds": 0.3})
    holder, waiter = open_store(quick), open_store(quick)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(StoreBusy, match="UPT_WRITE_WAIT_SECONDS"), waiter.transaction():
        pass
    waited = time.monotonic() - started
    release.set()
    thread.join()
    assert 0.2 <= waited < 5
    with waiter.transaction() as conn:  # free again: the next writer goes through
        conn.exec_driver_sql("SELECT 1")


def test_a_store_from_before_hotel_booking_contacts_gets_them_from_its_payloads(
    settings: Settings, tmp_path: Path
) -> None:
    import json

    from sqlalchemy import text

    from pipelines.keys import ensure_keys, keys_complete
    from profiles.store.schema import interactions

    booking = {
        "object_type": "hotel_booking",
        "source": "pms",
        "id": "HB-1",
        "modified_at": "2024-05-20T07:01:12Z",
        "data": {
            "hotel_code": "MAD",
            "check_in": "2024-06-10",
            "check_out": "2024-06-13",
            "status": "confirmed",
            "holder": {"first_name": "Ana", "emails": [{"address": "Ana.G@Mail.com"}]},
            "guests": [{"first_name": "Ana"}, {"first_name": "Luis"}],
        },
    }
    (tmp_path / "b.jsonl").write_text(json.dumps(booking) + "\n")
    store = open_store(settings)
    ingest_jsonl(store, settings, tmp_path / "b.jsonl")
    ensure_keys(store, settings)
    from alembic import command

    from profiles.store.db import _alembic_config

    command.downgrade(_alembic_config(store.engine), "0007")  # the blocking keys as 0006 left them
    with store.transaction() as conn:  # as an earlier UPT stored it: no contacts, at revision 0006
        for pk, attributes in conn.execute(select(interactions.c.id, interactions.c.attributes)).all():
            old = {k: v for k, v in dict(attributes).items() if not k.startswith("contact_")}
            conn.execute(interactions.update().where(interactions.c.id == pk).values(attributes=old))
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        assert keys_complete(conn, store.domain)
    store.engine.dispose()
    store = open_store(settings)  # migrates
    with store.reading() as conn:
        stored = [dict(a) for a in conn.execute(select(interactions.c.attributes)).scalars()]
        assert not keys_complete(conn, store.domain)  # keys are computed again before use
    assert len(stored) == 3
    assert all(a["contact_emails"] == ["Ana.G@Mail.com"] and a["contact_phones"] == [] for a in stored)
    assert ensure_keys(store, settings)


def _withdrawing(store: Store, settings: Settings, tmp_path: Path) -> None:
    import numpy as np

    from profiles.store.reads import mention_ids
    from profiles.store.schema import candidate_pairs
    from profiles.store.vectors import add_pairs, withdraw_blockers

    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(*(guest(f"G-{i}") for i in range(4))))
    ingest_jsonl(store, settings, path)
    with store.transaction() as conn:
        ids = sorted(
            mention_ids(conn, store.domain, [f"pms/guest_profile/G-{i}#traveller" for i in range(4)]).values()
        )
        a, b = np.array(ids[:3], np.int64), np.array(ids[1:], np.int64)
        add_pairs(conn, store.domain, a, b, np.array([1 | 2, 2, 4], np.int64), np.zeros(3, np.float32))
        # one pair keeps another blocker, one loses its only one, one is asked for a bit it lacks
        dropped = withdraw_blockers(conn, [(ids[0], ids[1], 2), (ids[1], ids[2], 2), (ids[2], ids[3], 1)])
        left = conn.execute(
            select(
                candidate_pairs.c.mention_a, candidate_pairs.c.mention_b, candidate_pairs.c.blockers
            ).where(candidate_pairs.c.domain == store.domain)
        ).all()
    assert dropped == {(ids[1], ids[2])}
    assert sorted(tuple(r) for r in left) == [(ids[0], ids[1], 1), (ids[2], ids[3], 4)]


def test_withdrawing_blockers_keeps_the_pairs_another_blocker_proposes(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    _withdrawing(store, settings, tmp_path)


@pytest.mark.postgres
def test_withdrawing_blockers_on_postgres(pg_store: Store, settings: Settings, tmp_path: Path) -> None:
    _withdrawing(pg_store, settings, tmp_path)


def test_replacing_pairs_writes_only_the_difference(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "three.jsonl"
    path.write_bytes(lines(*(guest(f"G{i}", first_name="Ana", last_name=f"Garcia{i}") for i in range(3))))
    ingest_jsonl(store, settings, path)
    with store.reading() as conn:
        p1, p2, p3 = sorted(int(pk) for (pk,) in conn.execute(select(mentions.c.id)))
    with store.transaction() as conn:
        first = replace_pairs(
            conn, store.domain, np.array([p1, p1]), np.array([p2, p3]), np.array([1, 2]), np.zeros(2)
        )
    with store.transaction() as conn:
        second = replace_pairs(
            conn, store.domain, np.array([p1, p2]), np.array([p3, p3]), np.array([4, 1]), np.zeros(2)
        )
        codes, flags = stored_pairs(conn, store.domain)
    assert first == {"inserted": 2, "updated": 0, "deleted": 0}
    assert second == {"inserted": 1, "updated": 1, "deleted": 1}  # (p1, p2) gone, (p1, p3) re-flagged
    assert codes.tolist() == [(p1 << 32) | p3, (p2 << 32) | p3] and flags.tolist() == [4, 1]
    with store.transaction() as conn:
        assert replace_pairs(
            conn, store.domain, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        ) == {
            "inserted": 0,
            "updated": 0,
            "deleted": 2,
        }
