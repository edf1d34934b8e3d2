"""Build mention frames from plain person dicts, as the store would hold them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.frame import frame_from_normalized
from features.normalize import normalize_person
from profiles.contract import Person


def frame_of(*people: dict[str, Any], source: str = "crm", region: str | None = None) -> pd.DataFrame:
    """Mentions 1..n, one per person dict, each in its own object unless `_object` says otherwise."""
    items = []
    for i, raw in enumerate(people, start=1):
        person = {k: v for k, v in raw.items() if not k.startswith("_")}
        norm = normalize_person(Person.model_validate(person), region).as_dict()
        items.append(
            (
                i,
                f"{source}/person_record/{i}#record",
                raw.get("_source", source),
                raw.get("_object", i),
                f"h{i}",
                norm,
            )
        )
    return frame_from_normalized(items)


def interactions_of(
    rows: list[tuple[int, str, str]], contacts: dict[str, tuple[str, ...]] | None = None
) -> pd.DataFrame:
    """(mention_pk, ref, role) rows as an interactions frame; `contacts`: a booking's contacts
    (normalized emails and phone suffixes) by reference."""
    contacts = contacts or {}
    return pd.DataFrame(
        [
            {
                "mention_pk": pk,
                "object_pk": 0,
                "kind": "hotel_stay",
                "role": role,
                "ref": ref,
                "contacts": contacts.get(ref, ()),
            }
            for pk, ref, role in rows
        ]
    )
