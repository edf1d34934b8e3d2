"""Booked from home: a family member on a trip another member booked is compared with the profiles
at the booker's home. Where the booker lives is a fact about the whole domain: the batch works it
out over the domain's frame, an online call asks the store, and both give the same features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection

from features.comparisons import MentionArrays, compare
from features.comparisons.base import bookings_compared, homes_of_contacts
from features.frame import load_interactions, load_mentions
from pipelines.homes import contact_homes_in_store
from pipelines.ingest import ingest_path
from profiles.settings import Settings
from profiles.store import Store, open_store

HOME = {"line1": "Rue de la Paix 48", "city": "Nice", "postal_code": "06030", "country": "FR"}
ELSEWHERE = {"line1": "Rue Victor Hugo 3", "city": "Lyon", "postal_code": "69002", "country": "FR"}


def _objects() -> list[dict[str, object]]:
    def envelope(kind: str, oid: str, data: dict[str, object]) -> dict[str, object]:
        return {
            "object_type": kind,
            "source": "pms",
            "id": oid,
            "modified_at": "2024-01-01T00:00:00Z",
            "data": data,
        }

    jean = {
        "first_name": "Jean",
        "last_name": "Dubois",
        "emails": [{"address": "jean@x.fr"}],
        "addresses": [HOME],
    }
    marie = {
        "first_name": "Marie",
        "last_name": "Dubois",
        "emails": [{"address": "marie@x.fr"}],
        "addresses": [HOME],
    }
    other = {
        "first_name": "Marie",
        "last_name": "Dubois",
        "emails": [{"address": "md@y.fr"}],
        "addresses": [ELSEWHERE],
    }
    stay = {
        "hotel_code": "NCE1",
        "check_in": "2024-05-01",
        "check_out": "2024-05-03",
        "status": "confirmed",
        "channel": "web",
        "holder": {"first_name": "Jean", "last_name": "Dubois", "emails": [{"address": "jean@x.fr"}]},
        "guests": [
            {"first_name": "Jean", "last_name": "Dubois"},
            {"first_name": "Marie", "last_name": "Dubois"},
        ],
    }
    return [
        envelope("guest_profile", "G1", {"traveller": jean}),
        envelope("guest_profile", "G2", {"traveller": marie}),
        envelope("guest_profile", "G3", {"traveller": other}),
        envelope("hotel_booking", "HB1", stay),
    ]


def _ingested(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "objects.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in _objects()), encoding="utf-8")
    ingest_path(store, settings, path)


def _read(conn: Connection, domain: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The domain's mentions, their interactions, and each mention's id by its key."""
    frame = load_mentions(conn, domain)
    return (
        frame,
        load_interactions(conn, domain),
        dict(zip(frame["mention_key"], frame["mention_pk"], strict=True)),
    )


def _check(store: Store, settings: Settings, tmp_path: Path) -> None:
    _ingested(store, settings, tmp_path)
    with store.reading() as conn:
        frame, interactions, pk = _read(conn, store.domain)
        guest = pk["pms/hotel_booking/HB1#guests[1]"]  # Marie on the stay Jean booked
        a = np.array([guest, guest], np.int64)
        b = np.array([pk["pms/guest_profile/G2#traveller"], pk["pms/guest_profile/G3#traveller"]], np.int64)
        batch = compare(MentionArrays.build(frame, interactions), a, b)
        # online: the guest and her candidates, the homes asked of the store
        few = frame[frame["mention_pk"].isin([guest, *b.tolist()])]
        mine = interactions[interactions["mention_pk"].isin(few["mention_pk"])]
        homes = contact_homes_in_store(conn, store.domain, few, mine)
        # what the store answers is what the whole frame holds, counts and homes
        contacts = {c for found in mine["contacts"] if found for c in found}
        assert contacts and homes == homes_of_contacts(frame, contacts)
        online = compare(MentionArrays.build(few, mine, homes), a, b)
    # Marie at the booker's home, not the namesake elsewhere
    assert batch["booked_from_home"].tolist() == [1.0, 0.0]
    assert online["booked_from_home"].tolist() == batch["booked_from_home"].tolist()
    without = compare(MentionArrays.build(few, mine, {}), a, b)  # the homes are needed
    assert without["booked_from_home"].tolist() != batch["booked_from_home"].tolist()


def test_the_booker_home_asked_of_the_store_is_that_of_the_whole_frame(
    tmp_path: Path, settings: Settings
) -> None:
    _check(open_store(settings), settings, tmp_path)


@pytest.mark.postgres
def test_the_booker_home_asked_of_postgres_is_that_of_the_whole_frame(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    _check(pg_store, settings, tmp_path)


def test_only_the_bookings_a_pair_can_compare_are_located(tmp_path: Path, settings: Settings) -> None:
    """A side's booker homes meet only the other side's own home or booker homes: for a person
    with neither (a `match` of a name and an email), the homes of its candidates' bookings are
    not read, and every feature is what it is with them read."""
    store = open_store(settings)
    _ingested(store, settings, tmp_path)
    with store.reading() as conn:
        frame, interactions, pk = _read(conn, store.domain)
        guest = pk["pms/hotel_booking/HB1#guests[1]"]
        marie = pk["pms/guest_profile/G2#traveller"]
        # Marie as a person asked about: her name and email, no address, no booking
        lone = frame[frame["mention_pk"] == marie].copy()
        lone["mention_pk"], lone["street"], lone["postal_code"] = 10_000, "", ""
        lone.index = lone["mention_pk"].to_numpy()
        few = pd.concat([frame[frame["mention_pk"].isin([guest, marie])], lone])
        mine = interactions[interactions["mention_pk"].isin(few["mention_pk"])]
        for a, b, read in (([guest], [10_000], False), ([guest, guest], [marie, 10_000], True)):
            a, b = np.array(a, np.int64), np.array(b, np.int64)
            compared = bookings_compared(few, mine, a, b)
            assert (len(compared) > 0) is read
            every = contact_homes_in_store(conn, store.domain, few, mine)
            some = contact_homes_in_store(conn, store.domain, few, compared)
            assert every and (some == every if read else some == {})
            with_every = compare(MentionArrays.build(few, mine, every), a, b)
            with_some = compare(MentionArrays.build(few, mine, some), a, b)
            pd.testing.assert_frame_equal(with_some, with_every)
