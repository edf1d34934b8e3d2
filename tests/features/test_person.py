from __future__ import annotations

from features.normalize import normalize_person
from features.records import object_record
from profiles.contract import Person, parse_line


def test_pnr_person_from_the_contract_example_is_normalized() -> None:
    person = Person.model_validate(
        {
            "full_name": "GARCIA LOPEZ/ANA MARIA MRS",
            "date_of_birth": "1984-07-19",
            "gender": "F",
            "phones": [{"number": "0034612345678"}],
            "loyalty": [{"program": "skymiles-demo", "id": "FF-4410092"}],
            "documents": [{"type": "passport", "number": "pab 123456", "country": "ES"}],
        }
    )
    norm = normalize_person(person)
    assert (norm.first_name, norm.last_name, norm.prefix) == ("ana maria", "garcia lopez", "mrs")
    assert norm.name_original == "ANA MARIA GARCIA LOPEZ"
    assert norm.phones == ["+34612345678"]
    assert norm.loyalty == ["skymilesdemo:FF4410092"]
    assert norm.documents == ["passport:PAB123456"]
    assert (norm.date_of_birth, norm.gender) == ("1984-07-19", "f")


def test_national_phone_is_read_in_the_address_country() -> None:
    person = Person.model_validate(
        {
            "first_name": "Ana",
            "phones": [{"number": "612 345 678"}],
            "addresses": [{"city": "Madrid", "country": "Spain"}],
        }
    )
    norm = normalize_person(person)
    assert norm.phones == ["+34612345678"] and norm.country == "ES" and not norm.flags


def test_unreadable_values_are_flagged_and_kept_out() -> None:
    person = Person.model_validate(
        {"first_name": "Bo", "emails": [{"address": "bo(at)example"}], "phones": [{"number": "612 345 678"}]}
    )
    norm = normalize_person(person)
    assert norm.emails == [] and norm.phones == [] and norm.phone_digits == ["612345678"]
    assert set(norm.flags) == {"email", "phone"}


def test_source_region_reads_national_numbers() -> None:
    person = Person.model_validate({"last_name": "Smith", "phones": [{"number": "07400 123456"}]})
    assert normalize_person(person, "GB").phones == ["+447400123456"]


def test_object_record_identifiers_and_interactions() -> None:
    line = (
        b'{"object_type":"air_booking","source":"pss","id":"PNR-1","modified_at":"2024-05-21T10:00:00Z",'
        b'"data":{"pnr":"X7K2QD","status":"ticketed","segments":[{"origin":"MAD","destination":"JFK",'
        b'"departure":"2024-07-01T11:35:00+02:00","flight_number":"DM101"}],"passengers":['
        b'{"full_name":"GARCIA/ANA MRS","emails":[{"address":"Ana@Example.com"}]},{"full_name":"GARCIA/LUIS MSTR"}]}}'
    )
    record = object_record(parse_line(line, 10_000))
    assert [m.key for m in record.mentions] == [
        "pss/air_booking/PNR-1#passengers[0]",
        "pss/air_booking/PNR-1#passengers[1]",
    ]
    assert record.mentions[0].identifiers == [("email", "ana@example.com")]
    assert record.mentions[1].interaction and record.mentions[1].interaction["ref"] == "pss/X7K2QD"
