"""Text folding shared by every normalizer: case, whitespace, punctuation and diacritics."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['\u2019\u2018`´]")


def clean_whitespace(text: str) -> str:
    """Unicode-normalized text with runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@lru_cache(maxsize=16_384)
def fold(text: str | None, german: bool = False) -> str:
    """Lower-case ASCII with punctuation as single spaces: 'García-López' -> 'garcia lopez'.

    With `german`, umlauts are spelled out first ('Müller' -> 'mueller') so both spellings of a
    German name can be compared; the default drops the marks ('Müller' -> 'muller').
    """
    if not text:
        return ""
    # Ordinal indicators ('3º B') are noise for matching; NFKC would turn them into letters.
    text = unicodedata.normalize("NFKC", text.replace("º", "").replace("ª", ""))
    if german:
        text = text.translate(_GERMAN)
    text = unidecode(_APOSTROPHES.sub("", text)).lower()
    return _NON_ALNUM.sub(" ", text).strip()


def fold_variants(text: str | None) -> frozenset[str]:
    """Every folded spelling of a text: with umlauts dropped and with umlauts spelled out."""
    return frozenset(v for v in (fold(text), fold(text, german=True)) if v)
