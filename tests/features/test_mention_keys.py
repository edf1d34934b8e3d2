"""The keys of one mention, derived row by row for online records, are those the vectorized
derivation gives for a whole frame: a property test over generated mentions and bookings."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.blocking.keys import _row_by_row, _sorted_keys, _vectorized, mention_keys
from tests.features.people import frame_of

FIRST = st.sampled_from(["", "Ana", "Ana María", "JOSÉ", "li", "Zoë", "o'neil"])
LAST = st.sampled_from(["", "Garcia", "García López", "Smith", "van der Berg", "Ng"])
DOB = st.sampled_from([None, "1984-07-19", "2001-01-02", "1950-12-31"])
EMAIL = st.sampled_from(["ana@example.com", "A.Garcia+x@Example.com", "bad-email", "j@x.org"])
PHONE = st.sampled_from(["+34 612 345 678", "612345678", "0044 20 7946 0958", "12", "+1 (415) 555-0101"])
POSTAL = st.sampled_from([None, "28001", "SW1A 1AA", "10115"])
STREET = st.sampled_from([None, "Calle Mayor 1", "10 Downing St"])


@st.composite
def people(draw: st.DrawFn) -> dict:
    person: dict = {"first_name": draw(FIRST) or None, "last_name": draw(LAST) or None}
    if dob := draw(DOB):
        person["date_of_birth"] = dob
    person["emails"] = [{"address": a} for a in draw(st.lists(EMAIL, max_size=2))]
    person["phones"] = [{"number": n} for n in draw(st.lists(PHONE, max_size=2))]
    if postal := draw(POSTAL):
        person["addresses"] = [{"postal_code": postal, "city": "Madrid"}]
        if street := draw(STREET):  # with a street, a home (`Blocker.HOME`)
            person["addresses"][0]["line1"] = street
    person["loyalty"] = [
        {"program": "ff", "id": i} for i in draw(st.lists(st.sampled_from(["A1", "b-2"]), max_size=2))
    ]
    person["documents"] = [
        {"type": "passport", "number": n}
        for n in draw(st.lists(st.sampled_from(["X123", "y 456"]), max_size=1))
    ]
    return person


@settings(max_examples=60, deadline=None)
@given(
    crowd=st.lists(people(), min_size=1, max_size=6),
    bookings=st.lists(
        st.tuples(
            st.integers(1, 6),
            st.sampled_from(["pms/HB-1", "pss/PNR-9"]),
            st.lists(st.sampled_from(["ana@example.com", "12345678", "j@x.org"]), max_size=2),
        ),
        max_size=5,
    ),
)
def test_row_by_row_keys_equal_the_vectorized_ones(crowd: list[dict], bookings: list) -> None:
    frame = frame_of(*crowd)
    interactions = pd.DataFrame(
        [
            {
                "mention_pk": pk,
                "object_pk": 0,
                "kind": "flight",
                "role": "passenger",
                "ref": ref,
                "contacts": tuple(c),
            }
            for pk, ref, c in bookings
            if pk <= len(crowd)
        ],
        columns=["mention_pk", "object_pk", "kind", "role", "ref", "contacts"],
    )
    one_by_one = _sorted_keys(_row_by_row(frame, interactions))
    at_once = _sorted_keys(_vectorized(frame, interactions))
    pd.testing.assert_frame_equal(one_by_one, at_once)
    pd.testing.assert_frame_equal(mention_keys(frame, interactions), at_once)
