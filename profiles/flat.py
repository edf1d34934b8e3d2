"""Flat person records (CSV/Parquet rows) mapped onto the contract's person block.

A mapping says which column(s) feed each target field; `a+b` joins columns with a space.
Values that do not parse (a date of birth like `19560231`) are kept raw in the flags, treated
as missing, and the row still goes in: real tables are messy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from profiles.contract import Person
from profiles.errors import ValidationFailed

FLAT_TARGETS = (
    "first_name",
    "middle_name",
    "last_name",
    "full_name",
    "prefix",
    "suffix",
    "date_of_birth",
    "gender",
    "email",
    "phone",
    "line1",
    "line2",
    "city",
    "state",
    "postal_code",
    "country",
    "loyalty_program",
    "loyalty_id",
    "document_type",
    "document_number",
    "company",
    "nationality",
)
_SCALARS = (
    "first_name",
    "middle_name",
    "last_name",
    "full_name",
    "prefix",
    "suffix",
    "date_of_birth",
    "gender",
    "company",
    "nationality",
)
_ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


@dataclass(frozen=True)
class ColumnMapping:
    """Target field -> the source columns joined to fill it."""

    id_column: str
    targets: dict[str, tuple[str, ...]]

    @property
    def columns(self) -> set[str]:
        return {self.id_column} | {c for cols in self.targets.values() for c in cols}

    def check_columns(self, available: list[str]) -> None:
        missing = sorted(self.columns - set(available))
        if missing:
            raise ValidationFailed(
                "mapping", f"columns {missing} are not in the file (it has {sorted(available)})"
            )


def parse_mapping(id_column: str, pairs: list[str], mapping_file: Path | None = None) -> ColumnMapping:
    """Build a mapping from `TARGET=COL[+COL...]` strings and/or a YAML file of the same pairs.

    The YAML file may hold `id_column:` and `map: {target: column}` (or the pairs at top level).
    """
    raw: dict[str, str] = {}
    if mapping_file is not None:
        data = yaml.safe_load(mapping_file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValidationFailed("mapping", f"{mapping_file} must hold a mapping of target: column")
        id_column = id_column or str(data.get("id_column") or "")
        raw.update(
            {
                str(k): str(v)
                for k, v in (
                    data.get("map") or {k: v for k, v in data.items() if k not in ("id_column", "source")}
                ).items()
            }
        )
    for pair in pairs:
        target, sep, column = pair.partition("=")
        if not sep or not column.strip():
            raise ValidationFailed("map", f"{pair!r} is not TARGET=COLUMN")
        raw[target.strip()] = column.strip()
    unknown = sorted(set(raw) - set(FLAT_TARGETS))
    if unknown:
        raise ValidationFailed("map", f"unknown targets {unknown}; allowed: {', '.join(FLAT_TARGETS)}")
    if not id_column:
        raise ValidationFailed("id_column", "missing: name the column holding each row's id")
    return ColumnMapping(id_column, {t: tuple(c.strip() for c in col.split("+")) for t, col in raw.items()})


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def mapped_values(row: Mapping[str, Any], mapping: ColumnMapping) -> dict[str, str]:
    """The target fields of one row, joined and trimmed; empty targets are left out."""
    out = {}
    for target, cols in mapping.targets.items():
        value = " ".join(v for v in (_text(row.get(c)) for c in cols) if v)
        if value:
            out[target] = value
    return out


def _person_dict(values: dict[str, str], source: str) -> dict[str, Any]:
    person: dict[str, Any] = {k: values[k] for k in _SCALARS if k in values}
    dob = person.get("date_of_birth")
    if dob and (m := _COMPACT_DATE.match(dob)):
        person["date_of_birth"] = f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    if "email" in values:
        person["emails"] = [{"address": values["email"]}]
    if "phone" in values:
        person["phones"] = [{"number": values["phone"]}]
    address = {k: values[k] for k in _ADDRESS if k in values}
    if address:
        person["addresses"] = [address]
    if "loyalty_id" in values:
        person["loyalty"] = [{"program": values.get("loyalty_program") or source, "id": values["loyalty_id"]}]
    if "document_number" in values:
        kind = values.get("document_type", "national_id").lower().replace(" ", "_")
        person["documents"] = [{"type": kind, "number": values["document_number"]}]
    return person


_TOP_FIELD = {
    "emails": "email",
    "phones": "phone",
    "addresses": "address",
    "loyalty": "loyalty_id",
    "documents": "document_number",
}


def row_to_person(values: dict[str, str], source: str) -> tuple[Person, dict[str, str]]:
    """A contract person from mapped values, plus flags for the values that did not parse."""
    person = _person_dict(values, source)
    flags: dict[str, str] = {}
    for _ in range(len(person) + 1):
        try:
            return Person.model_validate(person), flags
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            top = str(err["loc"][0])
            name = _TOP_FIELD.get(top, top)
            raw = values.get(name, values.get("document_type", "")) if top != "addresses" else ""
            reason = str(err["msg"]).removeprefix("Value error, ")
            flags[name] = f"{reason}: {raw!r}" if raw else reason
            person.pop(top, None)
    raise AssertionError("unreachable: every failing field is removed")  # pragma: no cover
