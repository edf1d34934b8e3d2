from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.blocking import Blocker, BlockingConfig, block, evaluate, knn_pairs, union
from features.blocking import keys as blocking_keys
from features.blocking.keys import home_keys, key_tables, pairs_from_keys
from features.blocking.strings import _block_pairs, reverse_for_one, string_pairs, top_for_one, window_bounds
from tests.features.people import frame_of, interactions_of


def pairs_by(frame: pd.DataFrame, blocker: Blocker, max_block: int = 50) -> set[tuple[int, int]]:
    a, b, _ = pairs_from_keys(key_tables(frame)[blocker], max_block)
    return set(zip(a.tolist(), b.tolist(), strict=True))


def test_identifier_keys_meet_across_formats() -> None:
    frame = frame_of(
        {
            "first_name": "Ana",
            "emails": [{"address": "Ana.Garcia+x@Example.com"}],
            "phones": [{"number": "+34 612 345 678"}],
        },
        {"first_name": "Ana", "emails": [{"address": "ana.garcia@example.com"}]},
        {"last_name": "Garcia", "phones": [{"number": "612345678"}]},  # national, no country: digits only
        {
            "last_name": "Garcia",
            "loyalty": [{"program": "stay", "id": "sr-1"}],
            "documents": [{"type": "passport", "number": "p 123"}],
        },
        {
            "last_name": "G",
            "loyalty": [{"program": "Stay", "id": "SR1"}],
            "documents": [{"type": "passport", "number": "P123"}],
        },
    )
    assert pairs_by(frame, Blocker.EMAIL) == {(1, 2)}
    assert pairs_by(frame, Blocker.PHONE) == {(1, 3)}
    assert pairs_by(frame, Blocker.LOYALTY) == {(4, 5)}
    assert pairs_by(frame, Blocker.DOCUMENT) == {(4, 5)}


def test_name_keys_cover_dob_phonetics_and_swaps() -> None:
    frame = frame_of(
        {"first_name": "John", "last_name": "Smith", "date_of_birth": "1980-01-02"},
        {"first_name": "John", "last_name": "Smith", "date_of_birth": "1980-01-02"},
        {"first_name": "Jon", "last_name": "Smyth", "date_of_birth": "1980-05-06"},
        {"first_name": "Smith", "last_name": "John"},
    )
    assert pairs_by(frame, Blocker.NAME_DOB) == {(1, 2)}
    assert {(1, 3), (2, 3)} <= pairs_by(frame, Blocker.PHONETIC_YEAR)
    assert {(1, 4), (2, 4)} <= pairs_by(frame, Blocker.NAME)


def test_birth_date_and_postal_code_meet_a_changed_name() -> None:
    # Febrl has such pairs: a misspelt surname and another first name at the same address
    frame = frame_of(
        {
            "first_name": "Sophie",
            "last_name": "Wiseman",
            "date_of_birth": "1929-06-19",
            "addresses": [{"postal_code": "2615"}],
        },
        {
            "first_name": "Mystique",
            "last_name": "Wisemkan",
            "date_of_birth": "1929-06-19",
            "addresses": [{"postal_code": "2615"}],
        },
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "date_of_birth": "1929-06-19",
            "addresses": [{"postal_code": "3000"}],
        },
        {"first_name": "Bo", "last_name": "Kim", "addresses": [{"postal_code": "2615"}]},
    )
    assert pairs_by(frame, Blocker.DOB_POSTAL) == {(1, 2)}
    result = block(frame, BlockingConfig())
    flags = dict(
        zip(zip(result.a.tolist(), result.b.tolist(), strict=True), result.blockers.tolist(), strict=True)
    )
    assert flags[(1, 2)] & Blocker.DOB_POSTAL


def test_a_giant_block_is_skipped_and_counted() -> None:
    people = [{"first_name": f"P{i}", "phones": [{"number": "+44 20 7946 0000"}]} for i in range(60)]
    frame = frame_of(*people)
    a, _, giant = pairs_from_keys(key_tables(frame)[Blocker.PHONE], max_block=50)
    assert len(a) == 0 and giant == 1
    result = block(frame, BlockingConfig(max_block=50))
    assert result.giant_keys == {"phone": 1}


def test_string_pass_finds_typos_within_a_birth_year() -> None:
    frame = frame_of(
        {"first_name": "Michaela", "last_name": "Neumann", "date_of_birth": "1956-02-21"},
        {"first_name": "Micheala", "last_name": "Nuemann", "date_of_birth": "1956-12-01"},
        {"first_name": "Zed", "last_name": "Quayle", "date_of_birth": "1956-03-03"},
    )
    a, b = string_pairs(frame, k=1, threshold=0.88)
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == {(1, 2)}


def test_string_pass_prefers_the_higher_score_over_a_tie_below_it() -> None:
    frame = frame_of(
        {"first_name": "Jonathan", "last_name": "Smith", "date_of_birth": "1980-01-01"},
        {"first_name": "Jonathon", "last_name": "Smith", "date_of_birth": "1980-01-01"},
        {"first_name": "Jonathan", "last_name": "Smith", "date_of_birth": "1980-02-02"},
    )
    a, b = string_pairs(frame, k=1, threshold=0.88)
    assert (1, 3) in set(zip(a.tolist(), b.tolist(), strict=True))


def test_union_keeps_every_proposer() -> None:
    a, b, flags = union([(np.array([1, 2]), np.array([3, 4]), 1), (np.array([1]), np.array([3]), 128)])
    assert a.tolist() == [1, 2] and b.tolist() == [3, 4] and flags.tolist() == [129, 1]
    assert Blocker.names_of(129) == ["email", "embedding"]


def test_knn_pairs_are_ordered_and_drop_self_and_empty() -> None:
    a, b = knn_pairs(np.array([5, 7]), np.array([[5, 7, -1], [7, 5, 9]]))
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(5, 7), (5, 7), (7, 9)]


def test_travel_pairs_mentions_of_one_booking() -> None:
    frame = frame_of(
        {"first_name": "Ana", "last_name": "Ruiz"},
        {"first_name": "A", "last_name": "R"},
        {"first_name": "Luis", "last_name": "Ruiz"},
    )
    travel = interactions_of([(1, "pms/HB-1", "holder"), (2, "pms/HB-1", "guest"), (3, "pms/HB-2", "guest")])
    pairs = block(frame, BlockingConfig(), interactions=travel)
    flags = dict(
        zip(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True), pairs.blockers.tolist(), strict=True)
    )
    assert flags[(1, 2)] & Blocker.TRAVEL


HOME = {"line1": "Rue de la Paix 48", "city": "Nice", "postal_code": "06030", "country": "FR"}
ELSEWHERE = {"line1": "Rue Victor Hugo 3", "city": "Lyon", "postal_code": "69002", "country": "FR"}


def _family() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = frame_of(
        {
            "first_name": "Jean",
            "last_name": "Dubois",
            "emails": [{"address": "jean@x.fr"}],
            "addresses": [HOME],
        },
        {
            "first_name": "Marie",
            "last_name": "Dubois",
            "emails": [{"address": "marie@x.fr"}],
            "addresses": [HOME],
        },
        {"first_name": "Marie", "last_name": "Dubois"},  # 3: a guest on a trip Jean booked
        {"first_name": "Marie", "last_name": "Dubois"},  # 4: a guest on a trip booked from Lyon
        {
            "first_name": "Marie",
            "last_name": "Dubois",
            "emails": [{"address": "md@y.fr"}],
            "addresses": [ELSEWHERE],
        },
        {"first_name": "Paul", "last_name": "Martin"},  # 6: a friend on Jean's trip
        {"first_name": "Marie", "last_name": "Dubois"},  # 7: a guest on a trip booked from nowhere known
        {"first_name": "Robert", "last_name": "Dubois", "addresses": [HOME]},  # 8: their son
        {"first_name": "Bob", "last_name": "Dubois"},  # 9: on his father's trip, by his nickname
    )
    travel = interactions_of(
        [
            (3, "pms/HB-1", "guest"),
            (6, "pms/HB-1", "guest"),
            (9, "pms/HB-1", "guest"),
            (4, "pms/HB-2", "guest"),
            (7, "pms/HB-3", "guest"),
        ],
        contacts={"pms/HB-1": ("jean@x.fr",), "pms/HB-2": ("md@y.fr",), "pms/HB-3": ("who@z.fr",)},
    )
    return frame, travel


def test_a_home_key_meets_a_family_and_the_trips_booked_from_its_home() -> None:
    frame, travel = _family()
    a, b, _ = pairs_from_keys(home_keys(frame, travel), 50)
    # a resident and the guest of her name booked from her home; her husband goes by another
    # initial, the friend on that trip by another surname; a guest booked from nowhere known has
    # no home; Bob and Robert go by r
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == {(2, 3), (4, 5), (8, 9)}
    pairs = block(frame, BlockingConfig(), interactions=travel)
    flags = dict(
        zip(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True), pairs.blockers.tolist(), strict=True)
    )
    assert flags[(2, 3)] & Blocker.HOME


def test_an_address_of_too_many_is_no_home(monkeypatch: pytest.MonkeyPatch) -> None:
    frame, travel = _family()
    monkeypatch.setattr(blocking_keys, "MOST_HOME_RESIDENTS", 1)
    a, b, _ = pairs_from_keys(home_keys(frame, travel), 50)
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == {(4, 5)}


def test_evaluate_reports_recall_transitive_recall_and_contributions() -> None:
    frame = frame_of(*({"first_name": f"N{i}"} for i in range(4)))
    truth = pd.DataFrame(
        {
            "mention_key": [f"crm/person_record/{i}#record" for i in (1, 2, 3, 4)],
            "person_id": ["p", "p", "p", "q"],
        }
    )
    pairs = block(frame, BlockingConfig(), (np.array([1, 2]), np.array([2, 3])))
    result = evaluate(frame, pairs, truth)
    assert result["true_pairs"] == 3 and result["recall"] == round(2 / 3, 5)
    assert result["transitive_recall"] == 1.0
    assert result["blockers"]["embedding"]["true_pairs_found"] == 2
    assert result["candidates_per_mention"] == 0.5


@st.composite
def _blocks(draw: st.DrawFn) -> tuple[list[str], list[int], list[int], int, int, int]:
    """A string-pass block in the block's order (names from a small alphabet, so that many are
    alike), a mention in it, a window and k."""
    n = draw(st.integers(2, 30))
    names = draw(st.lists(st.text("aab", min_size=3, max_size=6), min_size=n, max_size=n))
    orders = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    pks = draw(st.permutations(list(range(1, n + 1))))
    rows = sorted(zip(names, orders, pks, strict=True))
    return (
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        draw(st.integers(0, n - 1)),
        draw(st.sampled_from([4, 5, 6, 7, 40])),
        draw(st.integers(1, 3)),
    )


@given(_blocks())
@settings(max_examples=300, deadline=None)
def test_one_mention_s_string_pairs_from_both_sides_are_the_block_s(
    block_case: tuple[list[str], list[int], list[int], int, int, int],
) -> None:
    """A mention's own picks (`top_for_one`) and the rows whose picks hold it (`reverse_for_one`,
    over the slab read around it: `window` rows each side) are exactly the block's pairs with it
    (`_block_pairs`); the pairs it pushes out are pairs the block without it had and the block
    with it has not (all of them, where the block fits one window)."""
    names, orders, pks, at, window, k = block_case
    n = len(pks)
    whole_a, whole_b = _block_pairs(np.array(pks), np.array(orders), names, k, 0.5, window)
    rest = [i for i in range(n) if i != at]
    less_a, less_b = _block_pairs(
        np.array(pks)[rest], np.array(orders)[rest], [names[i] for i in rest], k, 0.5, window
    )
    with_it = set(zip(whole_a.tolist(), whole_b.tolist(), strict=True))
    gone = set(zip(less_a.tolist(), less_b.tolist(), strict=True)) - with_it
    lo, hi = max(0, at - window), min(n, at + window + 1)
    takers, lost = reverse_for_one(at - lo, pks[lo:hi], orders[lo:hi], names[lo:hi], k, 0.5, window)
    start, end = window_bounds(at, n, window)
    mine = [i for i in range(start, end) if i != at]
    own = top_for_one(
        pks[at],
        orders[at],
        names[at],
        [pks[i] for i in mine],
        [orders[i] for i in mine],
        [names[i] for i in mine],
        k,
        0.5,
    )
    m = pks[at]
    assert {(min(m, x), max(m, x)) for x in [*takers.tolist(), *own.tolist()]} == {
        p for p in with_it if m in p
    }
    assert set(lost) <= gone
    if n <= window:
        assert set(lost) == gone
    # asked without the pairs it pushes out (a `match`), the same rows take it
    quick, none = reverse_for_one(at - lo, pks[lo:hi], orders[lo:hi], names[lo:hi], k, 0.5, window, False)
    assert quick.tolist() == takers.tolist() and none == []
