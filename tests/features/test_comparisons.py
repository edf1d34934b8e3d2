from __future__ import annotations

import os
import select
import signal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import comparisons
from features.comparisons import MentionArrays, compare
from tests.features.people import frame_of, interactions_of


def features_of(
    *people: dict, pairs: list[tuple[int, int]], travel: pd.DataFrame | None = None
) -> pd.DataFrame:
    frame = frame_of(*people)
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return compare(MentionArrays.build(frame, travel), a, b, np.full(len(a), 0.5))


def test_names_nicknames_and_swaps() -> None:
    out = features_of(
        {"first_name": "Robert", "last_name": "Smith"},
        {"first_name": "Bob", "last_name": "Smyth"},
        {"first_name": "Smith", "last_name": "Robert"},
        {"last_name": "Jones"},
        pairs=[(1, 2), (1, 3), (1, 4)],
    )
    assert out.loc[0, "first_nickname_eq"] == 1.0 and out.loc[0, "last_phonetic_eq"] == 1.0
    assert out.loc[0, "last_jw"] == pytest.approx(0.893, abs=0.01)
    assert out.loc[1, "name_swap"] == 1.0 and out.loc[1, "first_jw"] < 0.6
    assert out.loc[2, "first_missing"] == 1.0 and np.isnan(out.loc[2, "first_jw"])
    assert out.loc[0, "embedding_cosine"] == 0.5


def test_dates_of_birth() -> None:
    out = features_of(
        {"first_name": "A", "date_of_birth": "1980-03-04"},
        {"first_name": "A", "date_of_birth": "1980-04-03"},
        {"first_name": "A", "date_of_birth": "1980-03-05"},
        {"first_name": "A", "date_of_birth": "1991-07-09"},
        {"first_name": "A"},
        pairs=[(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)],
    )
    assert out["dob_exact"].tolist()[:4] == [1, 0, 0, 0]
    assert out["dob_day_month_swapped"].tolist()[:4] == [0, 1, 0, 0]
    assert out["dob_one_digit_off"].tolist()[:4] == [0, 0, 1, 0]
    assert out["dob_conflict"].tolist() == [0, 0, 0, 1, 0]
    assert out.loc[3, "dob_year_gap"] == 11 and out.loc[4, "dob_missing"] == 1


def test_contacts_identifiers_and_conflicts() -> None:
    out = features_of(
        {
            "first_name": "A",
            "emails": [{"address": "A.B+x@Gmail.com"}],
            "phones": [{"number": "+34 612 345 678"}],
            "documents": [{"type": "passport", "number": "X1"}],
            "loyalty": [{"program": "sr", "id": "1"}],
        },
        {
            "first_name": "A",
            "emails": [{"address": "ab@gmail.com"}],
            "phones": [{"number": "612 345 678"}],
            "documents": [{"type": "passport", "number": "X2"}],
            "loyalty": [{"program": "sr", "id": "1"}],
        },
        pairs=[(1, 2)],
    )
    row = out.iloc[0]
    assert row["email_exact"] == 1 and row["phone_suffix_eq"] == 1 and np.isnan(row["phone_exact"])
    assert row["document_conflict"] == 1 and row["document_eq"] == 0 and row["loyalty_eq"] == 1
    assert row["shared_strong_ids"] == 2  # one email, one loyalty card


def test_a_document_number_one_typo_away() -> None:
    def passport(number: str) -> dict:
        return {
            "first_name": "Ana",
            "last_name": "Ruiz",
            "documents": [{"type": "passport", "number": number}],
        }

    for other, expected in (("X4086300", 1.0), ("X4086031", 1.0), ("X4086030", 0.0), ("X9186300", 0.0)):
        row = features_of(passport("X4086030"), passport(other), pairs=[(1, 2)]).iloc[0]
        assert row["document_one_off"] == expected, other
    alone = features_of(passport("X4086030"), {"first_name": "Ana"}, pairs=[(1, 2)]).iloc[0]
    assert np.isnan(alone["document_one_off"])


def test_travel_evidence() -> None:
    travel = interactions_of(
        [
            (1, "pms/HB-1", "holder"),
            (2, "pms/HB-1", "guest"),
            (3, "pms/HB-1", "guest"),
            (4, "pss/PNR", "passenger"),
        ]
    )
    out = features_of(*({"first_name": "A"} for _ in range(4)), pairs=[(1, 2), (2, 3), (1, 4)], travel=travel)
    assert out["shared_booking"].tolist() == [1, 1, 0]
    assert out["holder_and_guest"].tolist() == [1, 0, 0]
    assert out["travelled_together"].tolist() == [0, 1, 0]


def test_who_booked_ties_a_passenger_to_the_guest_whose_contact_the_booking_carries() -> None:
    travel = interactions_of(
        [(1, "pss/PNR1", "passenger"), (2, "pss/PNR1", "passenger"), (5, "pss/PNR2", "passenger")],
        contacts={"pss/PNR1": ("ana@x.com", "12345678"), "pss/PNR2": ("ana@x.com",)},
    )
    out = features_of(
        {"first_name": "Ana"},  # 1: a passenger, nothing but a name
        {"first_name": "Luis"},  # 2: her companion on the same booking
        {"first_name": "Ana", "emails": [{"address": "Ana@X.com"}]},  # 3: the guest who booked
        {"first_name": "Ana", "phones": [{"number": "+34 612 345 678"}]},  # 4: her phone only
        {"first_name": "Ana"},  # 5: a passenger of another booking made from her email
        {"first_name": "Ana", "emails": [{"address": "other@x.com"}]},  # 6: someone else's contact
        {"first_name": "Ana"},  # 7: no contact anywhere
        pairs=[(1, 3), (3, 1), (1, 4), (1, 6), (1, 7), (1, 5), (3, 6), (2, 3)],
        travel=travel,
    )
    assert out["booker_contact_eq"].tolist()[:4] == [1, 1, 1, 0]
    assert np.isnan(out["booker_contact_eq"].tolist()[4])  # nothing to hold the booking against
    assert np.isnan(out["booker_contact_eq"].tolist()[6])  # two guests: no booking contact
    assert out.loc[5, "same_booker"] == 1 and np.isnan(out.loc[0, "same_booker"])
    assert out.loc[7, "booker_contact_eq"] == 1  # the companion too: the names must tell them apart


def test_trips_booked_from_one_home_whatever_contact_each_was_booked_from() -> None:
    home = {"line1": "Rue de la Paix 48", "city": "Nice", "postal_code": "06030", "country": "FR"}
    elsewhere = {"line1": "Rue Victor Hugo 3", "city": "Lyon", "postal_code": "69002", "country": "FR"}
    travel = interactions_of(
        [
            (1, "pss/PNR1", "passenger"),
            (2, "pms/HB2", "guest"),
            (4, "pss/PNR3", "passenger"),
            (6, "pss/PNR4", "passenger"),
        ],
        contacts={
            "pss/PNR1": ("jean@x.fr",),
            "pms/HB2": ("marie@x.fr",),
            "pss/PNR3": ("md@y.fr",),
            "pss/PNR4": ("nobody@z.fr",),
        },
    )
    out = features_of(
        {"first_name": "Marie"},  # 1: booked by her husband's email
        {"first_name": "Marie"},  # 2: booked by her own email
        {"first_name": "Jean", "emails": [{"address": "jean@x.fr"}], "addresses": [home]},  # 3
        {"first_name": "Marie"},  # 4: booked from a home elsewhere
        {"first_name": "Marie", "emails": [{"address": "md@y.fr"}], "addresses": [elsewhere]},  # 5
        {"first_name": "Marie"},  # 6: booked from a contact nobody is known to live at
        {"first_name": "Marie", "emails": [{"address": "marie@x.fr"}], "addresses": [home]},  # 7
        pairs=[(1, 2), (1, 4), (1, 6), (1, 3), (2, 7)],
        travel=travel,
    )
    assert out.loc[0, "same_booker"] == 0  # two contacts...
    assert out.loc[0, "same_booker_home"] == 1  # ...of one home
    assert out.loc[1, "same_booker_home"] == 0
    assert np.isnan(out.loc[2, "same_booker_home"])  # no home to hold the other's against
    assert np.isnan(out.loc[3, "same_booker_home"])  # Jean travels on nothing
    assert out.loc[4, "booked_from_home"] == 1 and np.isnan(out.loc[4, "same_booker_home"])


name = st.sampled_from(["", "ana", "anna", "bob", "robert", "garcia", "garzia", "lee"])
person = st.fixed_dictionaries(
    {
        "first_name": name,
        "last_name": name,
        "date_of_birth": st.sampled_from([None, "1980-01-02", "1980-02-01", "1981-01-02"]),
    }
)


@settings(max_examples=30, deadline=None)
@given(st.lists(person, min_size=2, max_size=8), st.data())
def test_one_pair_online_equals_the_same_pair_in_a_batch(people: list[dict], data: st.DataObject) -> None:
    people = [{k: v for k, v in p.items() if v} or {"first_name": "x"} for p in people]
    n = len(people)
    pairs = data.draw(st.lists(st.tuples(st.integers(1, n), st.integers(1, n)), min_size=1, max_size=10))
    batch = features_of(*people, pairs=pairs)
    for i, pair in enumerate(pairs):
        single = features_of(*people, pairs=[pair])
        pd.testing.assert_series_equal(single.iloc[0], batch.iloc[i], check_names=False)


def test_comparisons_run_side_by_side_give_the_serial_result(monkeypatch: pytest.MonkeyPatch) -> None:
    people = [
        {"first_name": f, "last_name": last, "date_of_birth": dob, "email": f"{f}.{last}@example.com"}
        for f in ("ana", "anna", "jon", "john", "liz")
        for last in ("garcia", "garcya", "smith")
        for dob in ("1980-01-02", "1980-02-01")
    ]
    frame = frame_of(*people)
    arrays = MentionArrays.build(frame, None)
    a, b = np.triu_indices(len(people), 1)
    a, b = a + 1, b + 1
    cosine = np.linspace(0, 1, len(a))
    monkeypatch.setattr(comparisons, "PARALLEL_FROM", 10**9)
    serial = compare(arrays, a, b, cosine)
    monkeypatch.setattr(comparisons, "PARALLEL_FROM", 1)
    threaded = compare(arrays, a, b, cosine)
    pd.testing.assert_frame_equal(threaded, serial)


def test_a_forked_child_compares_on_its_own_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = frame_of(*({"first_name": f"ana{i}", "last_name": "garcia"} for i in range(30)))
    arrays = MentionArrays.build(frame, None)
    a, b = np.triu_indices(30, 1)
    monkeypatch.setattr(comparisons, "PARALLEL_FROM", 1)
    expected = compare(arrays, a + 1, b + 1)  # the parent's pool now has its threads
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            same = compare(arrays, a + 1, b + 1).equals(expected)
            os.write(write, b"1" if same else b"0")
        finally:
            os._exit(0)
    os.close(write)
    # a child whose inherited pool has no threads waits for ever: give it 30 s
    ready, _, _ = select.select([read], [], [], 30)
    answer = os.read(read, 1) if ready else b"timed out"
    if not ready:
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    assert answer == b"1"
