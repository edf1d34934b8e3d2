"""Contract objects and flat rows -> storable records with normalized mentions.

The one preparation step every ingestion path shares (batch files, HTTP API, stream): it is a
pure function of one object, so it serves one online record and a million batch records alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from features.normalize.person import NormalizedPerson, normalize_person
from profiles.contract import ContractObject, Person
from profiles.mentions import FLAT_OBJECT_TYPE, FLAT_PATH, Interaction, extract_mentions, mention_key
from profiles.store.records import MentionRecord, ObjectRecord

NORMALIZATION_VERSION = 1


def identifiers_of(norm: NormalizedPerson) -> list[tuple[str, str]]:
    """The strong identifiers of a mention, as (kind, value) rows for exact lookups."""
    return (
        [("email", v) for v in norm.emails]
        + [("phone", v) for v in norm.phones]
        + [("loyalty", v) for v in norm.loyalty]
        + [("document", v) for v in norm.documents]
    )


def _interaction_row(inter: Interaction | None) -> dict[str, Any] | None:
    if inter is None:
        return None
    return {
        "kind": inter.kind,
        "role": inter.role,
        "ref": inter.ref,
        "occurred_at": inter.occurred_at,
        "attributes": inter.attributes,
    }


def mention_record(
    key: str,
    path: str,
    person: Person,
    region: str | None,
    interaction: Interaction | None = None,
    extra_flags: dict[str, str] | None = None,
) -> MentionRecord:
    norm = normalize_person(person, region)
    norm.flags.update(extra_flags or {})
    normalized = {**norm.as_dict(), "version": NORMALIZATION_VERSION}
    return MentionRecord(
        key=key,
        path=path,
        matchable=person.matchable,
        raw=person.model_dump(mode="json", exclude_defaults=True),
        normalized=normalized,
        identifiers=identifiers_of(norm),
        interaction=_interaction_row(interaction),
    )


def object_record(obj: ContractObject, region: str | None = None) -> ObjectRecord:
    """A validated contract object with every person in it normalized as a mention."""
    return ObjectRecord(
        source=obj.source,
        object_type=obj.object_type.value,
        object_id=obj.id,
        modified_at=obj.modified_at,
        payload=obj.data.model_dump(mode="json", exclude_none=True),
        mentions=[
            mention_record(m.key, m.path, m.person, region, m.interaction) for m in extract_mentions(obj)
        ],
    )


def flat_record(
    source: str,
    row_id: str,
    row: dict[str, Any],
    person: Person,
    flags: dict[str, str],
    region: str | None = None,
    received_at: dt.datetime | None = None,
) -> ObjectRecord:
    """A flat table row as an unversioned object holding one mention `{source}/person_record/{id}#record`."""
    key = mention_key(source, FLAT_OBJECT_TYPE, row_id, FLAT_PATH)
    return ObjectRecord(
        source=source,
        object_type=FLAT_OBJECT_TYPE,
        object_id=row_id,
        modified_at=received_at or dt.datetime.now(dt.UTC),
        payload={"row": row},
        mentions=[mention_record(key, FLAT_PATH, person, region, extra_flags=flags)],
        versioned=False,
    )
