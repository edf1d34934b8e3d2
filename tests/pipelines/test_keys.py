"""The blocking keys kept at ingest are, row for row, what batch blocking derives from the stored
mentions: after new objects, newer versions of bookings (other passengers, other contacts), a
replay and an erasure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from features.blocking.keys import mention_keys
from features.blocking.order import order_key
from features.frame import load_interactions, load_mentions
from pipelines.ingest import ingest_path
from pipelines.keys import ensure_keys, keys_complete
from pipelines.privacy import Query, erase
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.keys import stored_keys
from profiles.store.reads import mention_keys_of
from profiles.store.schema import objects
from tests.pipelines.helpers import lines


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(name=frame["name"].fillna(""), kind=frame["kind"].astype(int))
    return frame.sort_values(["mention_pk", "kind", "key"]).reset_index(drop=True)[
        ["mention_pk", "kind", "key", "name"]
    ]


def _derived(store: Store) -> pd.DataFrame:
    with store.reading() as conn:
        return _sorted(mention_keys(load_mentions(conn, store.domain), load_interactions(conn, store.domain)))


def _kept(store: Store) -> pd.DataFrame:
    with store.reading() as conn:
        return _sorted(stored_keys(conn, store.domain))


def test_kept_keys_follow_every_write(store: Store, settings: Settings, tmp_path: Path) -> None:
    info = write_dataset(GeneratorConfig(persons=60, seed=5), tmp_path / "d")
    ingest_path(store, settings, Path(info["objects_file"]))
    with store.reading() as conn:
        assert keys_complete(conn, store.domain)
        kept = stored_keys(conn, store.domain)
        key_of = mention_keys_of(conn, store.domain, kept["mention_pk"].tolist())
    pd.testing.assert_frame_equal(_kept(store), _derived(store))
    # every row carries its mention's order key, from the mention key alone
    assert kept["order_key"].tolist() == [order_key(key_of[int(pk)]) for pk in kept["mention_pk"]]
    # a newer version of a booking with a passenger less and another contact
    with store.reading() as conn:
        source, object_id, payload = conn.execute(
            select(objects.c.source, objects.c.object_id, objects.c.payload).where(
                objects.c.object_type == "air_booking"
            )
        ).first()
    payload = json.loads(payload) if isinstance(payload, str) else payload
    payload["passengers"] = payload["passengers"][:1]
    payload["contact"] = {"emails": [{"address": "new.contact@example.org"}]}
    newer = {
        "object_type": "air_booking",
        "source": source,
        "id": object_id,
        "modified_at": "2031-01-01T00:00:00Z",
        "data": payload,
    }
    (tmp_path / "newer.jsonl").write_bytes(lines(newer))
    ingest_path(store, settings, tmp_path / "newer.jsonl")
    pd.testing.assert_frame_equal(_kept(store), _derived(store))
    # an erasure takes the person's keys, and their contact off other bookings' keys
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain)
        contacts = load_interactions(conn, store.domain).explode("contacts").dropna(subset=["contacts"])
    emails = {e for t in frame["emails"] for e in t}
    contact = next(c for c in contacts["contacts"] if c in emails)
    travel_before = _kept(store).query("kind == 512")
    assert contact in set(travel_before["key"])
    erase(store, settings, "dpo", query=Query(email=contact))
    kept = _kept(store)
    pd.testing.assert_frame_equal(kept, _derived(store))
    assert contact not in set(kept["key"])


def test_a_store_without_kept_keys_is_filled_once(store: Store, settings: Settings, tmp_path: Path) -> None:
    from pipelines.ingest import ingest_jsonl
    from profiles.store.keys import clear_keys

    info = write_dataset(GeneratorConfig(persons=30, seed=2), tmp_path / "d")
    ingest_jsonl(store, settings, Path(info["objects_file"]))  # as a store of an earlier version
    with store.transaction() as conn:
        clear_keys(conn, store.domain)
    assert ensure_keys(store, settings) is True
    assert ensure_keys(store, settings) is False
    pd.testing.assert_frame_equal(_kept(store), _derived(store))
