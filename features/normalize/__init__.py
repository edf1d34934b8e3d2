"""Normalization of people: names, emails, phones, addresses and dates of birth."""

from features.normalize.addresses import country_code, normalize_postal_code, normalize_street
from features.normalize.emails import NormalizedEmail, normalize_email
from features.normalize.names import NameParts, canonical_first_names, name_parts, split_full_name
from features.normalize.person import NormalizedPerson, normalize_identifier, normalize_person
from features.normalize.phones import NormalizedPhone, normalize_phone, region_code
from features.normalize.text import fold, fold_variants

__all__ = [
    "NameParts",
    "NormalizedEmail",
    "NormalizedPerson",
    "NormalizedPhone",
    "canonical_first_names",
    "country_code",
    "fold",
    "fold_variants",
    "name_parts",
    "normalize_email",
    "normalize_identifier",
    "normalize_person",
    "normalize_phone",
    "normalize_postal_code",
    "normalize_street",
    "region_code",
    "split_full_name",
]
