from __future__ import annotations

from pathlib import Path

import pytest

from profiles.errors import ValidationFailed
from profiles.flat import mapped_values, parse_mapping, row_to_person


def test_mapping_joins_columns_and_checks_targets(tmp_path: Path) -> None:
    mapping = parse_mapping("rec_id", ["first_name=given_name", "line1=street_number+address_1"])
    assert mapping.targets["line1"] == ("street_number", "address_1")
    values = mapped_values({"given_name": " ana ", "street_number": "12", "address_1": "high st"}, mapping)
    assert values == {"first_name": "ana", "line1": "12 high st"}
    with pytest.raises(ValidationFailed, match="unknown targets"):
        parse_mapping("rec_id", ["shoe_size=x"])
    with pytest.raises(ValidationFailed, match="TARGET=COLUMN"):
        parse_mapping("rec_id", ["first_name"])
    yaml_file = tmp_path / "m.yaml"
    yaml_file.write_text("id_column: rec_id\nmap:\n  last_name: surname\n")
    assert parse_mapping("", [], yaml_file).targets == {"last_name": ("surname",)}


def test_values_that_do_not_parse_are_flagged_and_dropped() -> None:
    person, flags = row_to_person(
        {"first_name": "Ann", "date_of_birth": "19560231", "document_number": "123", "document_type": "visa"},
        "febrl",
    )
    assert person.first_name == "Ann" and person.date_of_birth is None and person.documents == []
    assert set(flags) == {"date_of_birth", "document_number"}
    assert "19560231" in flags["date_of_birth"]


def test_compact_dates_and_defaults() -> None:
    person, flags = row_to_person(
        {"last_name": "Lee", "date_of_birth": "19560229", "loyalty_id": "L1", "document_number": "99"}, "crm"
    )
    assert str(person.date_of_birth) == "1956-02-29" and not flags
    assert person.loyalty[0].program == "crm" and person.documents[0].type == "national_id"
