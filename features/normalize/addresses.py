"""Postal addresses: case, punctuation, common abbreviations, postal codes, ISO countries."""

from __future__ import annotations

import re
from functools import lru_cache

from features.normalize.text import fold

# Street-type words in several languages, each mapped to one short form.
ABBREVIATIONS = {
    "street": "st",
    "str": "st",
    "strasse": "st",
    "straße": "st",
    "road": "rd",
    "avenue": "ave",
    "av": "ave",
    "avda": "ave",
    "avenida": "ave",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "terrace": "tce",
    "crescent": "cres",
    "highway": "hwy",
    "parkway": "pkwy",
    "circuit": "cct",
    "close": "cl",
    "calle": "c",
    "plaza": "pza",
    "paseo": "pso",
    "rue": "r",
    "via": "v",
    "apartment": "apt",
    "suite": "ste",
    "floor": "fl",
    "building": "bldg",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "number": "no",
    "numero": "no",
}
COUNTRY_ALIASES = {
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "u s a": "US",
    "us": "US",
    "united states": "US",
    "america": "US",
    "espana": "ES",
    "deutschland": "DE",
    "allemagne": "DE",
    "holland": "NL",
    "the netherlands": "NL",
    "italia": "IT",
    "brasil": "BR",
    "suisse": "CH",
    "schweiz": "CH",
    "osterreich": "AT",
    "oesterreich": "AT",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "uae": "AE",
    "czech republic": "CZ",
    "mexique": "MX",
    "mejico": "MX",
    "nippon": "JP",
}
_POSTAL_JUNK = re.compile(r"[^A-Z0-9]")


def normalize_street(line: str | None) -> str:
    """Folded street line with standard abbreviations: 'Calle de Alcalá 42, 3º B' -> 'c de alcala 42 3o b'."""
    return " ".join(ABBREVIATIONS.get(tok, tok) for tok in fold(line).split())


def normalize_postal_code(code: str | None) -> str:
    """Upper-case letters and digits only: 'sw1a 1aa' -> 'SW1A1AA', '28014' stays."""
    return _POSTAL_JUNK.sub("", (code or "").upper())


@lru_cache(maxsize=10_000)
def country_code(value: str | None) -> str | None:
    """ISO 3166 alpha-2 from a code or a name in common spellings: 'Spain', 'ESP', 'uk' -> 'ES', 'ES', 'GB'."""
    import pycountry

    if not value or not value.strip():
        return None
    text = value.strip()
    folded = fold(text)
    if folded in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[folded]
    for lookup in (text.upper(), text):
        try:
            found = pycountry.countries.lookup(lookup)
        except LookupError:
            continue
        return str(found.alpha_2)
    for country in pycountry.countries:
        names = {
            getattr(country, "name", ""),
            getattr(country, "common_name", ""),
            getattr(country, "official_name", ""),
        }
        if folded in {fold(n) for n in names if n}:
            return str(country.alpha_2)
    return None
