from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from pipelines.ingest import ingest_jsonl, ingest_table, replay_rejection
from profiles.flat import parse_mapping
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.reads import get_rejection, list_rejections, store_stats
from profiles.store.schema import identifiers, interactions, mentions, objects
from tests.pipelines.helpers import guest, lines

BAD_UTF8 = b'{"object_type": "guest_profile", "source": "pms\xff", "id": "x"}'


def count(store: Store, table) -> int:  # type: ignore[no-untyped-def]
    with store.reading() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.domain == store.domain)
            ).scalar()
        )


def test_good_lines_go_in_and_each_bad_line_is_kept_unaltered(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    huge = json.dumps(guest("G-huge", padding="x" * 10_000_000)).encode()
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(guest("G-1"), b"{broken", guest("G-2"), BAD_UTF8, huge, b"", guest("G-3")))
    result = ingest_jsonl(store, settings, path)
    assert (result.inserted, result.rejected) == (3, 3)
    with store.reading() as conn:
        listed = list_rejections(conn, store.domain)
        raws = {r["location"]: bytes(get_rejection(conn, store.domain, r["id"])["raw"]) for r in listed}
    assert raws == {"line 2": b"{broken", "line 4": BAD_UTF8, "line 5": huge}
    assert {r["field"] for r in listed} == {"line"}


def test_reingesting_changes_nothing_and_newer_versions_replace(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(lines(guest("G-1"), guest("G-2")))
    ingest_jsonl(store, settings, path)
    again = ingest_jsonl(store, settings, path)
    assert (again.inserted, again.replaced, again.unchanged) == (0, 0, 2)

    older = guest("G-1", "2023-01-01T00:00:00Z", first_name="Old")
    newer = guest(
        "G-2",
        "2024-06-01T00:00:00+02:00",
        first_name="Anita",
        last_name="Garcia",
        emails=[{"address": "anita@example.com"}],
    )
    path.write_bytes(lines(older, newer))
    result = ingest_jsonl(store, settings, path)
    assert (result.replaced, result.unchanged) == (1, 1)
    with store.reading() as conn:
        rows = dict(conn.execute(select(mentions.c.mention_key, mentions.c.first_name)).all())
        ids = conn.execute(select(identifiers.c.value)).scalars().all()
    assert rows == {"pms/guest_profile/G-1#traveller": "ana", "pms/guest_profile/G-2#traveller": "anita"}
    assert ids == ["anita@example.com"]
    assert count(store, objects) == 2 and count(store, mentions) == 2


def test_replacing_a_booking_keeps_mention_rows_and_rebuilds_interactions(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    booking = {
        "object_type": "hotel_booking",
        "source": "pms",
        "id": "HB-1",
        "modified_at": "2024-01-01T00:00:00Z",
        "data": {
            "hotel_code": "MAD",
            "check_in": "2024-06-10",
            "check_out": "2024-06-12",
            "status": "confirmed",
            "holder": {"first_name": "Ana"},
            "guests": [{"first_name": "Ana"}, {"first_name": "Luis"}],
        },
    }
    path = tmp_path / "b.jsonl"
    path.write_bytes(lines(booking))
    ingest_jsonl(store, settings, path)
    with store.reading() as conn:
        before = dict(conn.execute(select(mentions.c.mention_key, mentions.c.id)).all())
    booking["modified_at"] = "2024-02-01T00:00:00Z"
    booking["data"]["guests"] = [{"first_name": "Ana"}]
    path.write_bytes(lines(booking))
    assert ingest_jsonl(store, settings, path).replaced == 1
    with store.reading() as conn:
        after = dict(conn.execute(select(mentions.c.mention_key, mentions.c.id)).all())
    assert after == {k: v for k, v in before.items() if not k.endswith("guests[1]")}
    assert count(store, interactions) == 2


def test_gzip_files_are_read(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(lines(guest("G-1"), guest("G-2"))))
    assert ingest_jsonl(store, settings, path).inserted == 2


def test_flat_csv_rows_become_mentions_and_bad_values_are_flagged(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    pd.DataFrame(
        {
            "rec_id": ["rec-1-org", "rec-1-dup-0", "", "rec-2-org"],
            "given_name": ["michaela", "micheala", "x", "ann"],
            "surname": ["neumann", "neumann", "y", ""],
            "street_number": ["8", "8", "", "3"],
            "address_1": ["stanley street", "stanley st", "", "main rd"],
            "date_of_birth": ["1956-02-31", "19560221", "", ""],
            "soc_sec_id": ["5304218", "5304218", "", "1"],
        }
    ).to_csv(path, index=False)
    mapping = parse_mapping(
        "rec_id",
        [
            "first_name=given_name",
            "last_name=surname",
            "line1=street_number+address_1",
            "date_of_birth=date_of_birth",
            "document_number=soc_sec_id",
        ],
    )
    result = ingest_table(store, settings, path, "febrl", mapping)
    assert (result.inserted, result.rejected) == (3, 1)
    with store.reading() as conn:
        rows = {r.mention_key: r for r in conn.execute(select(mentions))}
        stats = store_stats(conn, store.domain)
    first = rows["febrl/person_record/rec-1-org#record"]
    assert first.date_of_birth is None and "1956-02-31" in first.flags["date_of_birth"]
    assert rows["febrl/person_record/rec-1-dup-0#record"].date_of_birth == "1956-02-21"
    assert first.normalized["street"] == "8 stanley st"
    assert stats["flags_by_field"] == {"date_of_birth": 1}
    again = ingest_table(store, settings, path, "febrl", mapping)
    assert (again.inserted, again.unchanged) == (0, 3)


def test_parquet_tables_are_read(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "people.parquet"
    pd.DataFrame(
        {"id": ["1", "2"], "name": ["Ana Garcia", "GARCIA/ANA MRS"], "mail": ["a@x.com", ""]}
    ).to_parquet(path)
    mapping = parse_mapping("id", ["full_name=name", "email=mail"])
    assert ingest_table(store, settings, path, "crm", mapping).inserted == 2
    with store.reading() as conn:
        assert set(conn.execute(select(mentions.c.last_name)).scalars()) == {"garcia"}


def test_replay_after_a_fix(store: Store, settings: Settings, tmp_path: Path) -> None:
    bad = guest("G-9", "yesterday")
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(bad))
    assert ingest_jsonl(store, settings, path).rejected == 1
    with store.reading() as conn:
        (item,) = list_rejections(conn, store.domain)
    assert replay_rejection(store, settings, item["id"]) is not None  # still broken as stored
    fixed = json.dumps(guest("G-9", "2024-01-01T00:00:00Z")).encode()
    assert replay_rejection(store, settings, item["id"], fixed) is None
    with store.reading() as conn:
        assert list_rejections(conn, store.domain) == []
        assert list_rejections(conn, store.domain, "replayed")[0]["id"] == item["id"]
    assert count(store, objects) == 1


def test_the_same_bad_line_is_stored_once(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(b"nope", b"nope"))
    ingest_jsonl(store, settings, path)
    ingest_jsonl(store, settings, path)
    with store.reading() as conn:
        (item,) = list_rejections(conn, store.domain)
    assert item["times_seen"] == 4


def test_a_line_beyond_the_keep_limit_is_cut_and_the_rest_of_the_file_still_goes_in(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"max_line_bytes": 1024, "max_kept_line_bytes": 4096})
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines(b"y" * 100_000, guest("G-1")))
    result = ingest_jsonl(store, small, path)
    assert (result.inserted, result.rejected) == (1, 1)
    with store.reading() as conn:
        (item,) = list_rejections(conn, store.domain)
        assert get_rejection(conn, store.domain, item["id"])["raw"] == b"y" * 4096
    assert "only its first bytes are kept" in item["reason"]
