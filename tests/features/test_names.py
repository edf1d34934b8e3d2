from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.normalize import (
    NameParts,
    canonical_first_names,
    fold,
    fold_variants,
    name_parts,
    split_full_name,
)
from features.normalize.text import clean_whitespace


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("SMITH/JOHN MR", NameParts("MR", "JOHN", None, "SMITH", None)),
        ("GARCIA LOPEZ/ANA MARIA MRS", NameParts("MRS", "ANA MARIA", None, "GARCIA LOPEZ", None)),
        ("GARCIA/LUIS MSTR", NameParts("MSTR", "LUIS", None, "GARCIA", None)),
        ("  o'brien / sean  ", NameParts(None, "sean", None, "o'brien", None)),
        ("Garcia, Ana", NameParts(None, "Ana", None, "Garcia", None)),
        ("Smith, John Paul Jr", NameParts(None, "John", "Paul", "Smith", "Jr")),
        ("John Smith, Jr.", NameParts(None, "John", None, "Smith", "Jr.")),
        ("Mrs Ana Garcia", NameParts("Mrs", "Ana", None, "Garcia", None)),
        ("Dr. Martin Luther King Jr", NameParts("Dr.", "Martin", "Luther", "King", "Jr")),
        ("Ludwig van Beethoven", NameParts(None, "Ludwig", None, "van Beethoven", None)),
        ("Juan de la Fuente", NameParts(None, "Juan", None, "de la Fuente", None)),
        ("Ana", NameParts(None, None, None, "Ana", None)),
        ("", NameParts()),
    ],
)
def test_split_full_name(full: str, expected: NameParts) -> None:
    assert split_full_name(full) == expected


def test_split_fields_win_and_titles_in_first_name_are_cleaned() -> None:
    parts = name_parts(first="ANA MRS", last="GARCIA", full_name="Ana Garcia Lopez")
    assert (parts.prefix, parts.first, parts.last) == ("MRS", "ANA", "GARCIA")
    assert name_parts(full_name="GARCIA/ANA MRS").last == "GARCIA"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("García-López", "garcia lopez"),
        ("MÜLLER", "muller"),
        ("O'Brien", "obrien"),
        ("  Ana   María ", "ana maria"),
        ("Zoë Saldaña", "zoe saldana"),
        ("Łukasz", "lukasz"),
        ("", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_german_variants_let_mueller_meet_muller() -> None:
    assert fold_variants("Müller") & fold_variants("Mueller")
    assert fold_variants("Müller") & fold_variants("Muller")
    assert fold_variants("García") == {"garcia"}


@pytest.mark.parametrize(
    ("nick", "canonical"),
    [
        ("Bob", "robert"),
        ("bobby", "robert"),
        ("Paco", "francisco"),
        ("Pepe", "jose"),
        ("Liz", "elizabeth"),
        ("Robert", "robert"),
        ("Xiomara", "xiomara"),
    ],
)
def test_nicknames(nick: str, canonical: str) -> None:
    assert canonical in canonical_first_names(nick)


def test_ambiguous_nickname_keeps_every_reading() -> None:
    assert {"alexander", "alexandra"} <= canonical_first_names("Alex")


names = st.text(alphabet=st.characters(categories=["L", "Zs", "Pd", "Po"]), max_size=40)


@given(names)
def test_fold_is_idempotent_lowercase_ascii(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert once == once.strip() and once.isascii() and once == once.lower()
    assert "  " not in once


@given(names)
def test_split_never_loses_a_letter_of_the_name(text: str) -> None:
    parts = split_full_name(text)
    joined = fold(
        " ".join(p for p in (parts.prefix, parts.first, parts.middle, parts.last, parts.suffix) if p)
    )
    expected = fold(clean_whitespace(text).replace("/", " ").replace(",", " "))
    assert sorted(joined.replace(" ", "")) == sorted(expected.replace(" ", ""))
