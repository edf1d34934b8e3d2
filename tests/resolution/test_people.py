"""How many people a contact value is written for: spellings of one person count once, a mention
without a name counts for nobody, different people count apart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from profiles.resolution.people import MOST_SPELLINGS, NameEntry, is_shared, people_among, same_person_name


def entry(first: str, last: str, *canonical: str, born: str = "") -> NameEntry:
    return first, last, frozenset(canonical or ((first,) if first else ())), born


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


def test_two_people_of_one_name_make_a_value_shared() -> None:
    # a guessed address, or a father and son on a family email: the name cannot say which one
    namesakes = [entry("john", "smith", born="1961-03-04"), entry("john", "smith", born="1988-10-12")]
    assert people_among(namesakes, 2) == 1
    assert is_shared(namesakes, 2)
    assert is_shared([*namesakes, entry("john", "smith")], 2)


def test_one_person_under_one_date_written_two_ways_is_not_shared() -> None:
    # day and month the other way round (a US and a European system), a spelling, no date at all
    one = [
        entry("monika", "schulz", born="1978-03-12"),
        entry("monika", "schulz", born="1978-12-03"),
        entry("monika", "shulz", born="1978-03-12"),
        entry("monika", "schulz"),
    ]
    assert not is_shared(one, 2)
    # different people may have different dates: a couple on one email is not shared
    assert not is_shared(
        [entry("jean", "dubois", born="1960-01-01"), entry("marie", "dubois", born="1962-05-05")], 2
    )


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
