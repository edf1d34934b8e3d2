"""The first name an email's local part names, held against a mention with a name, for a mention
that has none (a web session, a call)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.comparisons.email_names import email_names_first
from tests.features.test_comparisons import features_of


@pytest.mark.parametrize(
    ("first", "last", "local", "expected"),
    [
        ("marie", "le gall", "marie.gall", 1.0),
        ("jeannot", "le gall", "marie.gall", 0.0),  # his mother's address
        ("stefan", "schulz", "jschulz54", 0.0),  # another initial
        ("jurgen", "schulz", "jschulz54", 1.0),
        ("pepe", "garcia", "jgarcia59", 1.0),  # the initial of the name Pepe stands for
        ("bob", "smith", "robert.smith", 1.0),  # a nickname
        ("feonando", "garcia rodriguez", "fernandorodriguez", 1.0),  # a typo in the first name
        ("edward", "smiih", "johnsmith", 0.0),  # a typo in the last name
        ("klaus", "shneider", "friedrichschneider", 0.0),
        ("helene", "du pont", "helenepont17", 1.0),
        ("anthony", "williams", "williamsfamily", math.nan),  # a word, not a first name
        ("jose", "garcia", "alejandrorodriguez", math.nan),  # not his last name: cannot tell
        ("anna", "schmidt", "schmidt1980", math.nan),  # nothing beside the last name
        ("ana", "li", "mei.li", math.nan),  # a last name this short is found by chance
    ],
)
def test_what_an_email_says_about_a_first_name(first: str, last: str, local: str, expected: float) -> None:
    got = email_names_first(first, last, local)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=30))
def test_any_text_gives_agree_differ_or_unknown(first: str, last: str, local: str) -> None:
    got = email_names_first(first, last, local)
    assert got in (0.0, 1.0) or math.isnan(got)


def test_only_a_mention_without_a_name_is_read_by_its_email() -> None:
    out = features_of(
        {"first_name": "Stefan", "last_name": "Schulz"},
        {"emails": [{"address": "jschulz54@gmx.de"}]},  # a web session: an email, no name
        {"first_name": "Jurgen", "last_name": "Schulz", "emails": [{"address": "jschulz54@gmx.de"}]},
        {"emails": [{"address": "stefan.schulz@gmx.de"}]},
        pairs=[(1, 2), (2, 3), (1, 3), (4, 1), (2, 4)],
    )
    values = out["email_names_first"].tolist()
    assert values[:2] == [0.0, 1.0] and values[3] == 1.0
    assert np.isnan(values[2])  # both have names: the names are compared, not the email
    assert np.isnan(values[4])  # neither has a name
