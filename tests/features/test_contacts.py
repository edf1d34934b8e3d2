from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.normalize import (
    country_code,
    normalize_email,
    normalize_phone,
    normalize_postal_code,
    normalize_street,
)
from features.normalize.phones import region_code


@pytest.mark.parametrize(
    ("raw", "value", "valid"),
    [
        ("Ana.Garcia+hotels@Example.com", "ana.garcia@example.com", True),
        ("  <ANA@EXAMPLE.COM>; ", "ana@example.com", True),
        ("Ana Garcia <ana@example.com>", "ana@example.com", True),
        ("mailto:J.Doe@GoogleMail.com", "jdoe@gmail.com", True),
        ("j.o.h.n+x@gmail.com", "john@gmail.com", True),
        ("first.last@outlook.com", "first.last@outlook.com", True),
        ("ana garcia@example .com", "anagarcia@example.com", True),
        ("no-at-sign.example.com", "no-at-sign.example.com", False),
        ("two@@example.com", "two@@example.com", False),
        ("ana@localhost", "ana@localhost", False),
        ("ana@-bad-.com", "ana@-bad-.com", False),
    ],
)
def test_emails(raw: str, value: str, valid: bool) -> None:
    norm = normalize_email(raw)
    assert (norm.value, norm.valid) == (value, valid)


@given(st.emails())
def test_valid_emails_stay_valid_and_normalizing_is_idempotent(address: str) -> None:
    once = normalize_email(address)
    assert normalize_email(once.value) == once
    assert "@" in once.value and once.value == once.value.lower()


@given(st.text(max_size=60))
def test_email_normalizer_never_raises(text: str) -> None:
    assert isinstance(normalize_email(text).valid, bool)


@pytest.mark.parametrize(
    ("number", "region", "e164"),
    [
        ("+34 612 345 678", None, "+34612345678"),
        ("0034612345678", None, "+34612345678"),
        ("612345678", "ES", "+34612345678"),
        ("612 34 56 78", "ES", "+34612345678"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("+1 201-555-0123 ext. 42", None, "+12015550123"),
        ("07400 123456", "GB", "+447400123456"),
        ("+44 (0)7400 123456", None, "+447400123456"),
        ("030 1234567", "DE", "+49301234567"),
        ("612345678", None, None),
        ("call me", "ES", None),
        ("", "ES", None),
    ],
)
def test_phones(number: str, region: str | None, e164: str | None) -> None:
    assert normalize_phone(number, region).e164 == e164


@pytest.mark.parametrize(
    ("code", "region"),
    [("ES", "ES"), ("es", "ES"), ("34", "ES"), ("+44", "GB"), ("0049", "DE"), ("zz", None), (None, None)],
)
def test_region_codes(code: str | None, region: str | None) -> None:
    assert region_code(code) == region


@given(st.text(alphabet="0123456789 +-()", max_size=25), st.sampled_from([None, "ES", "US", "GB"]))
def test_phone_results_are_e164_or_none(number: str, region: str | None) -> None:
    e164 = normalize_phone(number, region).e164
    assert e164 is None or (e164.startswith("+") and e164[1:].isdigit() and len(e164) <= 16)
    if e164:
        assert normalize_phone(e164).e164 == e164


@pytest.mark.parametrize(
    ("line", "norm"),
    [
        ("Calle de Alcalá 42, 3º B", "c de alcala 42 3 b"),
        ("12 High Street", "12 high st"),
        ("350 Fifth Avenue, Suite 21", "350 fifth ave ste 21"),
        ("Hauptstraße 5", "hauptstrasse 5"),
    ],
)
def test_streets(line: str, norm: str) -> None:
    assert normalize_street(line) == norm


def test_postal_codes() -> None:
    assert normalize_postal_code("sw1a 1aa") == "SW1A1AA"
    assert normalize_postal_code(" 28014 ") == "28014"
    assert normalize_postal_code(None) == ""


@pytest.mark.parametrize(
    ("name", "iso"),
    [
        ("ES", "ES"),
        ("Spain", "ES"),
        ("españa", "ES"),
        ("ESP", "ES"),
        ("United Kingdom", "GB"),
        ("uk", "GB"),
        ("England", "GB"),
        ("USA", "US"),
        ("United States of America", "US"),
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("Mexico", "MX"),
        ("México", "MX"),
        ("Atlantis", None),
        ("", None),
    ],
)
def test_countries(name: str, iso: str | None) -> None:
    assert country_code(name) == iso


def test_phone_suffix_is_shared_by_the_writings_of_one_number() -> None:
    from features.normalize.phones import phone_suffix

    assert phone_suffix("+34 612 345 678") == phone_suffix("612345678") == "12345678"
    assert phone_suffix("0034-612-345-678") == "12345678"
    assert phone_suffix("12 34") is None  # too short to say anything
