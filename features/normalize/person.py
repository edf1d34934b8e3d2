"""One contract person -> its normalized form, as stored beside the raw mention."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from features.normalize.addresses import country_code, normalize_postal_code, normalize_street
from features.normalize.emails import normalize_email
from features.normalize.names import canonical_first_names, name_parts
from features.normalize.phones import normalize_phone, region_code
from features.normalize.text import clean_whitespace, fold
from profiles.contract import Person

_ID_JUNK = re.compile(r"[^A-Z0-9]")
_GENDERS = {
    "m": "m",
    "male": "m",
    "man": "m",
    "h": "m",
    "hombre": "m",
    "f": "f",
    "female": "f",
    "woman": "f",
    "w": "f",
    "mujer": "f",
}


@dataclass
class NormalizedPerson:
    """Matching-ready values of one mention. Names are folded (lower ASCII); `name_original`
    keeps the name as written; `flags` maps a field to why its value was not usable."""

    prefix: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    suffix: str | None = None
    first_name_canonical: list[str] = field(default_factory=list)
    full_name: str | None = None
    name_original: str | None = None
    date_of_birth: str | None = None
    gender: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    phone_digits: list[str] = field(default_factory=list)  # national digits when no E.164 could be had
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    loyalty: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    company: str | None = None
    nationality: str | None = None
    flags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        # A shallow copy with fresh lists: dataclasses.asdict deep-copies and costs a third of ingest.
        return {
            k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
            for k, v in vars(self).items()
        }


def normalize_identifier(value: str) -> str:
    """Loyalty, document and similar ids: upper-case letters and digits only."""
    return _ID_JUNK.sub("", value.upper())


def _or_none(text: str) -> str | None:
    return text or None


def normalize_person(person: Person, source_region: str | None = None) -> NormalizedPerson:
    """Normalize every field of a person; bad values are flagged and left out, never fatal."""
    out = NormalizedPerson()
    parts = name_parts(
        person.first_name,
        person.middle_name,
        person.last_name,
        person.full_name,
        person.prefix,
        person.suffix,
    )
    out.prefix, out.first_name = _or_none(fold(parts.prefix)), _or_none(fold(parts.first))
    out.middle_name, out.last_name = _or_none(fold(parts.middle)), _or_none(fold(parts.last))
    out.suffix = _or_none(fold(parts.suffix))
    out.first_name_canonical = sorted(canonical_first_names(parts.first))
    out.full_name = _or_none(" ".join(p for p in (out.first_name, out.middle_name, out.last_name) if p))
    out.name_original = _or_none(
        clean_whitespace(" ".join(p for p in (parts.first, parts.middle, parts.last) if p))
    )
    if person.date_of_birth:
        out.date_of_birth = person.date_of_birth.isoformat()
    if person.gender:
        out.gender = _GENDERS.get(fold(person.gender), "x")

    for email in person.emails:
        email_norm = normalize_email(email.address)
        if not email_norm.valid:
            out.flags["email"] = f"invalid address {email.address!r}"
            continue
        if email_norm.value not in out.emails:
            out.emails.append(email_norm.value)

    address = next((a for a in person.addresses if a.line1 or a.city or a.postal_code), None)
    if address:
        out.street = _or_none(normalize_street(" ".join(x for x in (address.line1, address.line2) if x)))
        out.city, out.state = _or_none(fold(address.city)), _or_none(fold(address.state))
        out.postal_code = _or_none(normalize_postal_code(address.postal_code))
        out.country = country_code(address.country)
        if address.country and not out.country:
            out.flags["country"] = f"unknown country {address.country!r}"
    if person.nationality:
        out.nationality = country_code(person.nationality)

    home_region = out.country or out.nationality or source_region
    for phone in person.phones:
        region = region_code(phone.country_code) or home_region
        norm = normalize_phone(phone.number, region)
        if norm.e164 is None:
            digits = re.sub(r"\D", "", phone.number).lstrip("0")
            if len(digits) >= 6 and digits not in out.phone_digits:
                out.phone_digits.append(digits)
            why = "a national number and no country to read it in" if region is None else "unreadable number"
            out.flags["phone"] = f"{why}: {phone.number!r}"
        elif norm.e164 not in out.phones:
            out.phones.append(norm.e164)

    for card in person.loyalty:
        value = f"{fold(card.program).replace(' ', '')}:{normalize_identifier(card.id)}"
        if value not in out.loyalty:
            out.loyalty.append(value)
    for doc in person.documents:
        value = f"{doc.type}:{normalize_identifier(doc.number)}"
        if value not in out.documents:
            out.documents.append(value)
    out.company = _or_none(fold(person.company))
    return out
