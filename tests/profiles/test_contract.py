"""The contract boundary: every kind of bad input is rejected alone, with a reason naming the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiles.contract import ContractObject, ObjectType, parse_line
from profiles.errors import ValidationFailed
from profiles.mentions import extract_mentions

LIMIT = 2_000_000


def good(**changes: object) -> dict:
    obj = {
        "object_type": "hotel_booking",
        "source": "opera-pms-emea",
        "id": "HB-1",
        "modified_at": "2024-05-20T07:01:12+02:00",
        "data": {
            "hotel_code": "MADGV",
            "check_in": "2024-06-10",
            "check_out": "2024-06-13",
            "status": "confirmed",
            "holder": {"first_name": "Ana", "last_name": "Garcia"},
            "guests": [{"first_name": "Ana"}, {"first_name": "Luis", "date_of_birth": "2012-02-03"}],
        },
    }
    obj.update(changes)
    return obj


def reject(line: bytes | str | dict) -> ValidationFailed:
    raw = (
        json.dumps(line).encode()
        if isinstance(line, dict)
        else line.encode()
        if isinstance(line, str)
        else line
    )
    with pytest.raises(ValidationFailed) as info:
        parse_line(raw, LIMIT)
    return info.value


def test_contract_examples_are_accepted_or_rejected_as_their_expectation_says(examples_path: Path) -> None:
    accepted, rejected = 0, 0
    for raw in examples_path.read_bytes().splitlines():
        try:
            expectation = json.loads(raw).get("_expect")
        except json.JSONDecodeError:
            expectation = "reject: line is not JSON"
        if expectation is None:
            obj = parse_line(raw, LIMIT)
            assert isinstance(obj, ContractObject)
            accepted += 1
            continue
        error = reject(raw)
        said = f"{error.field}: {error.reason}".lower()
        words = re.findall(r"[a-z0-9_]{3,}", expectation.removeprefix("reject:").lower())
        assert all(w in said for w in words), f"{expectation!r} not matched by {said!r}"
        rejected += 1
    assert accepted == 6 and rejected == 6


def test_a_valid_booking_yields_a_mention_per_person_with_contract_keys() -> None:
    obj = parse_line(json.dumps(good()).encode(), LIMIT)
    mentions = extract_mentions(obj)
    assert [m.key for m in mentions] == [
        "opera-pms-emea/hotel_booking/HB-1#holder",
        "opera-pms-emea/hotel_booking/HB-1#guests[0]",
        "opera-pms-emea/hotel_booking/HB-1#guests[1]",
    ]
    assert {m.interaction.ref for m in mentions if m.interaction} == {"opera-pms-emea/HB-1"}
    assert obj.object_type is ObjectType.HOTEL_BOOKING


def test_a_hotel_bookings_contacts_are_its_holders_for_every_traveller_on_it() -> None:
    from features.frame import _contacts

    booking = good()
    booking["data"]["holder"] |= {
        "emails": [{"address": "Ana.G@Mail.com"}],
        "phones": [{"number": "+34 612 345 678"}],
    }
    mentions = extract_mentions(parse_line(json.dumps(booking).encode(), LIMIT))
    contacts = {_contacts(m.interaction.attributes) for m in mentions if m.interaction}
    assert contacts == {("ana.g@mail.com", "12345678")}  # normalized as the mentions' own contacts


def test_unknown_top_level_fields_are_ignored() -> None:
    assert parse_line(json.dumps(good(extra_field=1, _expect="x")).encode(), LIMIT).id == "HB-1"


@pytest.mark.parametrize(
    ("line", "field", "phrase"),
    [
        ("{not json", "line", "not json"),
        ('["a list"]', "line", "json object"),
        (good(id=123), "id", "string"),
        (good(object_type="car_rental"), "object_type", "unknown object_type"),
        (good(object_type=None), "object_type", "unknown object_type"),
        (good(source="pss airline/../x"), "source", "forbidden character"),
        (good(source="../../etc/passwd"), "source", "forbidden character"),
        (good(source="a" * 65), "source", "length"),
        (good(modified_at="yesterday"), "modified_at", "rfc 3339"),
        (good(modified_at="2024-01-01T00:00:00"), "modified_at", "rfc 3339"),
        (good(id=""), "id", "at least 1"),
        (good(data="text"), "data", "dictionary"),
        (good(data={**good()["data"], "check_in": "2024-02-30"}), "data.check_in", "no such day"),
        (good(data={**good()["data"], "status": "maybe"}), "data.status", "confirmed"),
        (good(data={**good()["data"], "holder": "Ana"}), "data.holder", "dictionary"),
        (
            good(data={**good()["data"], "guests": [{"date_of_birth": "31/02/1980"}]}),
            "data.guests[0].date_of_birth",
            "not a date",
        ),
        (
            good(data={**good()["data"], "guests": [{"date_of_birth": "1956-02-31"}]}),
            "data.guests[0].date_of_birth",
            "no such day",
        ),
        (
            good(data={**good()["data"], "guests": [{"date_of_birth": "2999-01-01"}]}),
            "data.guests[0].date_of_birth",
            "outside",
        ),
        (
            good(data={**good()["data"], "holder": {"emails": [{"address": 5}]}}),
            "data.holder.emails[0].address",
            "string",
        ),
    ],
)
def test_bad_input_is_rejected_with_the_field_and_the_reason(
    line: str | dict, field: str, phrase: str
) -> None:
    error = reject(line)
    assert error.field == field
    assert phrase in error.reason.lower()


def test_missing_data_is_named() -> None:
    obj = good()
    del obj["data"]
    error = reject(obj)
    assert (error.field, error.reason.split()[0]) == ("data", "missing")


def test_invalid_utf8_is_rejected() -> None:
    error = reject(b'{"object_type": "pax_profile", "source": "x\xff\xfe"}')
    assert error.field == "line" and "utf-8" in error.reason.lower()


def test_overlong_line_is_rejected_without_parsing() -> None:
    huge = json.dumps(good(padding="x" * 10_000_000)).encode()
    error = reject(huge)
    assert error.field == "line" and "longer than the limit" in error.reason


@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_raise_validation_failed(raw: bytes) -> None:
    try:
        parse_line(raw, LIMIT)
    except ValidationFailed as exc:
        assert exc.field and exc.reason


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_value_either_parses_or_is_rejected_cleanly(value: object) -> None:
    try:
        parse_line(json.dumps(value).encode(), LIMIT)
    except ValidationFailed as exc:
        assert exc.field
