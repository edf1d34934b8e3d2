"""How many people a contact value is written for: spellings of one person count once, a mention
without a name counts for nobody, different people count apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from profiles.resolution.people import MOST_SPELLINGS, people_among, same_person_name


def entry(first: str, last: str, *canonical: str) -> tuple[str, str, frozenset[str]]:
    return first, last, frozenset(canonical or ((first,) if first else ()))


def test_one_persons_spellings_are_one_person() -> None:
    names = [
        entry("michael", "wilson"),
        entry("michael", "wislon"),  # a typo
        entry("mick", "wilson", "michael"),  # a nickname
        entry("", ""),  # a web session with the address alone
        entry("michael", ""),  # one part missing
    ]
    assert people_among(names, 1) == 1


def test_a_family_is_several_people() -> None:
    family = [entry("jean", "dubois"), entry("marie", "dubois"), entry("pierre", "dubois")]
    assert people_among(family, 5) == 3
    assert people_among(family, 1) == 2  # counted only as far as the question needs


def test_a_dropped_second_surname_is_the_same_name() -> None:
    assert same_person_name(entry("ana", "garcia lopez"), entry("ana", "garcia"))
    assert not same_person_name(entry("ana", "garcia"), entry("ana", "martinez"))


def test_a_part_missing_adds_nobody_who_a_full_name_covers() -> None:
    # "garcia" alone would match both; it must not make them one group
    names = [entry("", "garcia"), entry("ana", "garcia"), entry("juan", "garcia")]
    assert people_among(names, 5) == 2


def test_too_many_spellings_are_shared_whatever_they_look_like() -> None:
    names = [entry("ana", "garcia" + "x" * i) for i in range(MOST_SPELLINGS + 1)]
    assert people_among(names, 1) == 2


_names = st.lists(
    st.tuples(
        st.sampled_from(["", "ana", "anna", "juan", "jose", "pepe"]),
        st.sampled_from(["", "garcia", "garcai", "lopez"]),
    ),
    max_size=12,
)


@given(_names, st.randoms())
def test_the_count_is_the_same_in_any_order_and_at_most_the_named_spellings(
    names: list[tuple[str, str]], rnd: object
) -> None:
    entries = [entry(f, la) for f, la in names]
    shuffled = list(entries)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    count = people_among(entries, 50)
    assert count == people_among(shuffled, 50)
    assert count <= len({(f, la) for f, la in names if f or la})
    assert (count == 0) == (not any(f or la for f, la in names))
